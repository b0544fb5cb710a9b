"""The mixed strategy: expert episodes with about a third babbled, fixed by (seed, episode)."""

import numpy as np

from facetwin.motion import make_strategy
from facetwin.motion.strategy import MIXED_BABBLE_SHARE


def test_each_episode_is_exactly_an_expert_or_a_babble_episode():
    mixed, expert, babble = (make_strategy(n, seed=3) for n in ("mixed", "expert", "babble"))
    kinds = []
    for i in range(30):
        ep = mixed.episode(i, 40, 30)
        if np.array_equal(ep, expert.episode(i, 40, 30)):
            kinds.append("expert")
        else:
            np.testing.assert_array_equal(ep, babble.episode(i, 40, 30))
            kinds.append("babble")
    share = kinds.count("babble") / len(kinds)
    assert 0.1 < share < 0.6 and abs(share - MIXED_BABBLE_SHARE) < 0.25


def test_mixed_episodes_repeat_for_the_same_seed():
    a, b = make_strategy("mixed", seed=1), make_strategy("mixed", seed=1)
    for i in (0, 5, 11):
        np.testing.assert_array_equal(a.episode(i, 20, 30), b.episode(i, 20, 30))
