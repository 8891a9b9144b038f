"""Routing: weights hold, keys are sticky, shadows are sampled independently."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from milepost.serving.router import BUCKETS, Router, bucket
from milepost.serving.spec import EndpointSpec, Variant


def spec(canary: float, shadow: float = 0.0) -> EndpointSpec:
    variants = [Variant(name="a", model="m", version=1, role="primary")]
    if canary:
        variants.append(Variant(name="b", model="m", version=2, role="canary", weight=canary))
    if shadow:
        variants.append(Variant(name="c", model="m", version=3, role="shadow", share=shadow))
    return EndpointSpec(variants=variants)


@given(
    st.floats(min_value=0.5, max_value=100),
    st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30),
)
def test_the_same_key_always_gets_the_same_variant(weight: float, keys: list[str]) -> None:
    router = Router.of(spec(weight))
    first = [router.pick(k).name for k in keys]
    again = [Router.of(spec(weight)).pick(k).name for k in keys]
    assert first == again


def test_canary_share_matches_its_weight() -> None:
    for weight in (5, 25, 50):
        router = Router.of(spec(weight))
        share = sum(router.pick(f"user-{i}").name == "b" for i in range(20_000)) / 20_000
        assert abs(share - weight / 100) < 0.015


@given(st.floats(min_value=0, max_value=100), st.floats(min_value=0, max_value=100))
def test_raising_the_weight_only_moves_keys_to_the_canary(low: float, high: float) -> None:
    low, high = sorted((low, high))
    before, after = Router.of(spec(low)), Router.of(spec(high))
    for i in range(300):
        key = f"k{i}"
        if before.pick(key).name == "b":
            assert after.pick(key).name == "b"


def test_no_canary_means_everything_to_the_primary() -> None:
    router = Router.of(spec(0))
    assert {router.pick(str(i)).name for i in range(1000)} == {"a"}


def test_shadow_sampling_is_independent_of_the_canary() -> None:
    router = Router.of(spec(50, shadow=0.5))
    both = sum(
        router.pick(str(i)).name == "b" and bool(router.mirrors(str(i))) for i in range(20_000)
    )
    assert abs(both / 20_000 - 0.25) < 0.02
    assert Router.of(spec(0, shadow=1.0)).mirrors("x")[0].name == "c"


@given(st.text(max_size=50))
def test_buckets_are_in_range(key: str) -> None:
    assert 0 <= bucket(key) < BUCKETS
