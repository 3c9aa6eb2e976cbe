import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from merkit.models.simd import add, fma, lane, load, load_one, mul, splat, store, sub, where_greater


@njit
def _lanes(a, b, c, out, chosen):
    x, y, z = load(a, 0), load(b, 0), load(c, 0)
    store(out, 0, fma(x, y, z))
    store(out, 16, sub(add(mul(x, y), z), load_one(c, 3)))
    store(chosen, 0, where_greater(x, y, splat(1), splat(2)))
    return lane(fma(x, y, z), 5)


def test_vector_operations_lane_by_lane():
    e = np.float32(2.0**-13)
    a = np.full(16, 1 + e, np.float32)
    b = np.full(16, 1 - e, np.float32)
    c = np.full(16, -1.0, np.float32)
    a[1], b[1] = np.nan, 0.0  # NaN is not greater
    a[2], b[2] = 3.0, 2.0
    a[3] = b[3] = 0.5  # equal is not greater: the running maximum keeps its first position
    out, chosen = np.zeros(32, np.float32), np.zeros(16, np.int32)
    fifth = _lanes(a, b, c, out, chosen)
    # (1 + e)(1 - e) - 1 = -e^2 = -2^-26: fused, it is exact; rounded first, the product is 1.0 in float32
    assert out[0] == -(2.0**-26) and fifth == -(2.0**-26)
    assert out[16] == 1.0  # 1.0 + (-1) - c[3]
    assert out[2] == 3 * 2 - 1
    assert (
        chosen[0] == 1 and chosen[1] == 2 and chosen[2] == 1 and chosen[3] == 2
    )  # 1 + e > 1 - e; NaN > 0; 3 > 2; 0.5 > 0.5


def test_loads_refuse_what_they_cannot_read_as_vectors():
    with pytest.raises(TypingError, match="C-contiguous 1-d float32 or int32"):
        njit(lambda a: lane(load(a, 0), 0))(np.zeros(32))  # float64
    with pytest.raises(TypingError, match="C-contiguous"):
        njit(lambda a: lane(load(a, 0), 0))(np.zeros(64, np.float32)[::2])
    with pytest.raises(TypingError, match="compares two f32x16"):
        njit(lambda a: lane(where_greater(load(a, 0), load(a, 0), splat(1), splat(np.float32(2))), 0))(
            np.zeros(16, np.float32)
        )
