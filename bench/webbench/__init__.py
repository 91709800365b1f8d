"""Benchmark of the web console (``meshwatch web``, issue 13's goals).

Four measurements, each of the real code path:

- **fleet page**: ``GET /`` of the console's app (Starlette's in-process test client, read-only)
  with the large fleet (2,000 assets at 50 sites) put straight into its in-memory `Fleet`, as
  the broker feed would; the median and the worst of the repeats, in server time.
- **asset page**: ``GET /assets/SITE/ASSET`` over an embedded store in a temporary data dir
  holding 6 h of 1 Hz telemetry (4 metrics), an anomaly score per reading and two alert
  episodes, written through `ingest.embedded.EmbeddedStore` as the pipeline writes them.
- **live update**: a real mosquitto and the console served by uvicorn (`WebServer`); an SSE
  client on ``/events``; the time from publishing a changed retained health message to the
  ``health`` event reaching the client.
- **memory**: a real ``meshwatch web --read-only`` subprocess; the large fleet's 2,000
  retained health messages on the broker; once the fleet page lists them all and has been
  served a few times, the process's resident set (``VmRSS``) and its peak (``VmHWM``).
"""
