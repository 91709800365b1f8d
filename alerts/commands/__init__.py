"""Commands from maintenance tools on ``meshwatch/cmd/<command>``, and what they change.

- `alerts.commands.handler`: the payloads, their checks and the replies;
- `alerts.commands.feedback`: verdicts on alerts and model resets (`FeedbackDesk`).
"""

from __future__ import annotations

__all__: list[str] = []
