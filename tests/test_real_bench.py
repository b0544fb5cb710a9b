"""The round-trip bench measures what it says: 25 servos at 1 Mbps, never faster than the wire allows."""

from facetwin.app.bench.real import run


def test_quick_bench_times_a_full_sync_write_and_read_cycle():
    result = run(quick=True)
    assert (result["servos"], result["baudrate"]) == (25, 1_000_000)
    # the emulator holds the bus for every byte, so no round trip can beat the modelled wire time
    assert result["round_trip_p50_ms"] >= result["wire_ms"]
    assert result["round_trip_p50_ms"] <= result["round_trip_p95_ms"]
    assert result["retries"] == 0
