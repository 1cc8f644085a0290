"""``exchange soak``: a steady load through producer, broker and consumer, watched over time.

:mod:`~exchange.soak.runner` starts the workers (:mod:`~exchange.soak.worker`) and samples
them every interval, :mod:`~exchange.soak.audit` verifies the audit trail at the end,
:mod:`~exchange.soak.stats` holds the arithmetic and :mod:`~exchange.soak.report` the
presentation. Tooling, like :mod:`exchange.bench`: library code never imports it.
"""
