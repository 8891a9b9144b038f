"""Readable run names such as ``brisk-otter-417``."""

from __future__ import annotations

_ADJECTIVES = (
    "amber agile bold brisk calm clever crisp daring eager fair gentle glad grand "
    "honest keen lively lucid merry nimble noble polite proud quick quiet rapid sharp "
    "shiny steady sunny swift tidy vivid warm wise witty zesty"
).split()
_NOUNS = (
    "badger bear beaver bison crane dolphin eagle falcon ferret finch fox gecko heron "
    "ibis jaguar koala lark lemur lynx marten mole newt otter owl panda puffin quail "
    "raven robin seal shrike stork swan tapir tern viper walrus wren yak zebra"
).split()


def run_name(run_id: str) -> str:
    """A name derived from the run id, so it is stable and needs no randomness."""
    n = int(run_id[:12], 16)
    adjective = _ADJECTIVES[n % len(_ADJECTIVES)]
    noun = _NOUNS[(n // len(_ADJECTIVES)) % len(_NOUNS)]
    number = (n // (len(_ADJECTIVES) * len(_NOUNS))) % 1000
    return f"{adjective}-{noun}-{number:03d}"
