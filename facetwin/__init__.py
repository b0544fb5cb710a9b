"""facetwin: a simulation-first digital twin of a servo-driven robot face that mimics human expressions."""

__version__ = "0.1.0"


def _register_envs() -> None:
    # Entry points are strings, so `import facetwin` registers the envs without importing MuJoCo.
    import gymnasium

    for name, entry_point in (
        ("facetwin/FaceMimic-v0", "facetwin.sim.envs.face_mimic:FaceMimicEnv"),
        ("facetwin/FaceTrack-v0", "facetwin.sim.envs.face_track:FaceTrackEnv"),
    ):
        if name not in gymnasium.registry:
            gymnasium.register(id=name, entry_point=entry_point)


_register_envs()
