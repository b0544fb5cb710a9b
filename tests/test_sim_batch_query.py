"""The aggregation rounds' twin query on a BatchTwin answers as the serial one does."""

from __future__ import annotations

import numpy as np

from facetwin.agents.forward.aggregation import twin_query
from facetwin.motion.constraints import limit_coupling
from facetwin.sim.batch.query import batch_query


def test_batched_answers_equal_the_serial_query(twin):
    rng = np.random.default_rng(8)
    commands = np.array([np.clip(limit_coupling(c, twin.spec), -1, 1) for c in rng.uniform(-1, 1, (7, twin.spec.n))])
    serial = twin_query(twin.spec)
    batched = batch_query(twin.spec, n_worlds=3)  # 7 commands: two full batches and a short one
    (e1, l1), (e2, l2) = serial(commands), batched(commands)
    np.testing.assert_allclose(e2, e1, atol=1e-5, rtol=0)
    np.testing.assert_allclose(l2, l1, atol=1e-4, rtol=0)
    # Each command settles from the neutral face: asking again, in another order, changes nothing.
    e3, _ = batched(commands[::-1])
    batched.twin.close()
    np.testing.assert_allclose(e3[::-1], e2, atol=1e-6, rtol=0)
