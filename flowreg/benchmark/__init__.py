"""``flowreg bench``: what each registry design costs on this machine, measured honestly.

- ``harness``: calibrated loops, interleaved runs, loop overhead subtracted, same-run ratios.
- ``cases``: the designs (list, dict class, dict + hot cache, flowreg py/c, lock wrappers, peer
  libraries) and the statement each times per operation; shared with ``bench/`` (pytest-benchmark).
- ``suites``, ``batch``, ``memory``: what is measured; ``context`` and ``profiles``: the run's
  selection, its populations, and how much each mode (--tiny, --quick, default) measures.
- ``verdicts``: the original analysis' claims and flowreg's targets against the measurements.
- ``results``, ``report``, ``progress``: rows and verdicts; text, rich, JSON and PNG output.
- ``runner``: the command line's options and the run itself (Ctrl-C keeps what was measured).

``import flowreg`` never imports this package, and nothing here needs a third-party package at
import time: rich, matplotlib and the peer libraries are used when installed (the bench extra).
"""
