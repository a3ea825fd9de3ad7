"""One loading path for the scheduler plugin, the OSC plugin and the CLI.

* :mod:`.data` – the topology (as a core :class:`Engine`) and the traffic
  sources: one stevedore factory on one namespace, as tooz's
  ``get_coordinator``; and :class:`~.data.FileCache`, which re-reads a file
  only when it changes;
* :mod:`.servers` – the core :class:`Server` from flavor, extra specs and
  metadata, and Nova's weight-multiplier rule;
* :mod:`.capacity` – Placement's capacity rule;
* :mod:`.placement_file` – the placement snapshot file (``nova-netaware
  --placement``).

Nothing here imports Nova: callers pass plain values.
"""
