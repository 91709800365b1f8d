"""Benchmark of ``meshwatch alerts history`` on the embedded store (issue 15's goal).

The store is filled as the pipeline would fill it over 24 simulated hours of the large fleet
(50 sites of 40 assets), written straight through `ingest.embedded.EmbeddedStore` instead of
running the day live (`fill`):

- **telemetry**: every asset's readings (4 metrics) over the day, one every
  ``--reading-interval`` seconds (the fleet's own rate is 1 Hz: 173 M rows and tens of GB,
  which history never reads; 60 s keeps the file realistic in layout at 2.9 M rows);
- **alerts**: ``--episodes`` alert episodes over the day (3,000 by default: 1.5 per asset,
  ten times ISA-18.2's "maximum manageable" 300 a day, an alarm flood kept up all day), each
  a firing and, unless still open at the end, a resolution 1 to 90 minutes later;
- **actions**: 60 % acknowledged within 20 minutes, 30 % given a verdict (a third ``normal``),
  5 % shelved, and 20 site silences over the day;
- **notifications**: each episode's firing and resolution to three receivers, and a repeat
  to each every 4 hours while unacknowledged.

Then the pipeline's own query (`alerts.history.query.answer` over
`ingest.embeddedreader.EmbeddedReader`, what the ``history`` command runs) is timed, each
``--repeats`` times: the whole day (the newest 100 episodes, then every one up to the reply's
byte budget), ``--summary``, and one site; then the first again without the ``ts`` indexes
of ``alert``, ``alert_action`` and ``notification`` (the ratio shows what they buy). The
goal is the worst time under 1 s, with the indexes.
"""
