"""facetwin.real: the physical face on its Feetech STS serial bus, in layers.

control_table (registers as data) -> protocol (packets, typed errors) -> bus (vendor SDK transport,
retries, torque) -> calibration (commands <-> ticks, as the spec maps them for the twin) -> safety
(limits, slew, watchdog, fault stop) -> robot (the twin's action space). emulator answers on a pty
like 25 servos, so all of it runs without hardware; soak drives N control ticks on it with faults
injected at random and checks limits, typed errors and torque release (docs/reliability.md).
This package never imports facetwin.sim or facetwin.agents.
"""
