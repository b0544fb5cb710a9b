"""The face spec is the single source of servo names, limits and order."""

import numpy as np
import pytest

from facetwin.spec import CommandError, SpecError, default_spec, load_spec


def test_spec_lays_out_25_servos_by_region():
    spec = default_spec()
    assert spec.n == 25
    counts = {r: len(spec.region_indices(r)) for r in ("eyes", "eyelids", "brows", "mouth", "neck")}
    assert counts == {"eyes": 4, "eyelids": 2, "brows": 4, "mouth": 12, "neck": 3}
    assert sorted(s.bus_id for s in spec.servos) == list(range(1, 26))


def test_limits_stay_inside_the_servo_travel():
    spec = default_spec()
    for s in spec.servos:
        assert 0 <= s.min_deg < s.neutral_deg < s.max_deg <= spec.travel_deg, s.name


def test_command_maps_piecewise_linearly_to_the_range():
    spec = default_spec()
    jaw = spec.index("jaw_open")
    c = np.zeros(25)
    c[jaw] = 1.0
    assert spec.offsets_deg(c)[jaw] == spec.servo("jaw_open").range_deg[1]
    c[jaw] = -1.0
    assert spec.offsets_deg(c)[jaw] == spec.servo("jaw_open").range_deg[0]
    c = np.linspace(-1, 1, 25)
    np.testing.assert_allclose(spec.commands_from_offsets(spec.offsets_deg(c)), c, atol=1e-12)


@pytest.mark.parametrize(
    "command, message",
    [
        (np.zeros(24), "expected 25 servo commands"),
        (np.r_[np.nan, np.zeros(24)], "NaN"),
        (np.r_[1.5, np.zeros(24)], "out of range: eye_right_yaw=1.5"),
    ],
)
def test_bad_commands_are_rejected_with_the_reason(command, message):
    with pytest.raises(CommandError, match=message):
        default_spec().check_command(command)


def test_coupling_limits_corner_commands_while_the_jaw_is_open():
    spec = default_spec()
    c = np.zeros(25)
    c[spec.index("jaw_open")] = 1.0
    c[spec.index("corner_raise_left")] = 1.0
    assert any("corner_raise_left" in v for v in spec.coupling_violations(c))
    c[spec.index("corner_raise_left")] = 0.4
    assert spec.coupling_violations(c) == []


def test_an_inconsistent_spec_file_is_refused(tmp_path):
    from facetwin.spec import default_spec_path

    text = default_spec_path().read_text().replace("bus_id: 2,", "bus_id: 1,")
    bad = tmp_path / "spec.yaml"
    bad.write_text(text)
    with pytest.raises(SpecError, match="bus IDs must be unique"):
        load_spec(bad)
