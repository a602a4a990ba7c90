"""Templates cannot be abused: properties of pipeline/template.py under hypothesis.

- One pass: a field value that contains template syntax (`{other}`, `{{`, `%Y`) is copied
  as it is, never rendered again, so an event cannot make a template read other fields.
- Fields only: whatever the path (dunder names, attribute chains, `os.environ`), a
  placeholder reads only the event's own mappings, exactly as a plain dict walk does;
  nothing from attributes, the environment or files ever appears.
- Literal text and escapes come out as written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.template import Template, to_text

MARKER = "ENV-SECRET-7f3a"  # in the environment during these tests, never in an event or template

# Text full of template syntax: braces, escapes, date codes, pipes, colons, dots.
syntax_text = st.text(alphabet=st.sampled_from(list("{}%|:.@_-aZ09 YmdH\n\\$")), max_size=40)
any_text = st.one_of(syntax_text, st.text(max_size=40))
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
hostile_segments = st.one_of(
    names,
    st.sampled_from(["__class__", "__init__", "__globals__", "__dict__", "environ", "os", "sys", "modules",
                     "__builtins__", "mro", "0", "-1", "get", "keys", "items", "__getitem__"]),
)  # fmt: skip
paths = st.lists(hostile_segments, min_size=1, max_size=4).map(".".join)
leaves = st.one_of(any_text, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))
events = st.recursive(
    st.dictionaries(names, leaves, max_size=5),
    lambda children: st.dictionaries(names, st.one_of(leaves, children), max_size=4),
    max_leaves=12,
)


@pytest.fixture(autouse=True, scope="module")
def secret_in_environment() -> Iterator[None]:
    os.environ["PIPELINE_TEMPLATE_TEST_SECRET"] = MARKER
    yield
    del os.environ["PIPELINE_TEMPLATE_TEST_SECRET"]


def dict_walk(obj: dict[str, Any], path: str) -> Any:
    """The reference: a flat key with the dots first, else nested dicts only; anything else is None."""
    if obj.get(path) is not None:
        return obj[path]
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
        if value is None:
            return None
    return value


class TestOnePass:
    @settings(max_examples=300, deadline=None)
    @given(value=any_text, other=any_text, prefix=st.text(alphabet="abc -/", max_size=5))
    def test_a_value_with_template_syntax_is_copied_not_rendered(self, value: str, other: str, prefix: str) -> None:
        event = {"a": value, "other": other, "@timestamp": "2031-02-03T04:05:06.000Z"}
        rendered = Template(prefix + "{a|-}" + prefix).render(event)
        assert rendered == prefix + (value or "-") + prefix

    @settings(max_examples=200, deadline=None)
    @given(value=any_text)
    def test_a_value_naming_another_field_does_not_reach_it(self, value: str) -> None:
        event = {"a": "{secret}" + value + "%Y{{secret}}", "secret": "TOP-SECRET"}
        assert "TOP-SECRET" not in Template("{a}").render(event)

    @settings(max_examples=200, deadline=None)
    @given(value=any_text, limit=st.integers(min_value=1, max_value=50))
    def test_a_cut_value_is_a_prefix_of_the_value(self, value: str, limit: int) -> None:
        rendered = Template(f"{{a:{limit}|}}").render({"a": value})
        assert len(rendered) <= limit
        assert rendered == value or (rendered.endswith("…") and value.startswith(rendered[:-1]))


class TestFieldsOnly:
    @settings(max_examples=400, deadline=None)
    @given(event=events, path=paths)
    def test_a_placeholder_reads_exactly_what_a_dict_walk_reads(self, event: dict[str, Any], path: str) -> None:
        try:
            template = Template("{" + path + "|MISSING}")
        except ValueError:
            return  # not a valid field path: refused at load, never rendered
        expected = dict_walk(event, path)
        text = to_text(expected) if expected is not None else ""
        assert template.render(event) == (text or "MISSING")

    @settings(max_examples=300, deadline=None)
    @given(event=events, source=st.text(alphabet=st.sampled_from(list("{}%|:._aZ09 Yme_s")), max_size=30))
    def test_no_template_reads_the_environment(self, event: dict[str, Any], source: str) -> None:
        try:
            template = Template(source)
        except ValueError:
            return
        assert MARKER not in template.render(event)

    @pytest.mark.parametrize("path", ["__class__", "a.__class__", "a.__class__.__init__.__globals__",
                                      "__init__.__globals__.os.environ", "a.upper", "a.0", "os.environ"])
    def test_attribute_chains_are_not_followed(self, path: str) -> None:
        assert Template("{" + path + "|none}").render({"a": "text"}) == "none"


class TestLiterals:
    @settings(max_examples=200, deadline=None)
    @given(text=st.text(alphabet=st.characters(blacklist_characters="{}%"), max_size=60))
    def test_plain_text_renders_as_itself(self, text: str) -> None:
        assert Template(text).render({"text": "other"}) == text

    @settings(max_examples=200, deadline=None)
    @given(text=st.text(alphabet=st.characters(blacklist_characters="{}%"), max_size=30))
    def test_escapes_render_as_single_braces(self, text: str) -> None:
        assert Template("{{" + text + "}}%%").render({text: "value"}) == "{" + text + "}%"
