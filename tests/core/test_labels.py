"""parse_label: codes in any case, lists, synonyms, diacritics, level prefixes; unknown terms are named."""

from __future__ import annotations

import itertools
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.annotations.labels import ParsedLabel, UnknownLabelError, parse_label
from core.annotations.model import DISEASES, LEVELS, Disease, disease_label

OVCF, OF, SN, KD, PS = Disease.OVCF, Disease.OF, Disease.SN, Disease.KD, Disease.PS


@pytest.mark.parametrize("disease", DISEASES)
def test_each_code(disease):
    assert parse_label(disease.value) == ParsedLabel(frozenset({disease}), vertebra_only=False, level=None)


@pytest.mark.parametrize("label", ["ovcf", "OVCF", "Ovcf", "oVcF", "  OVCF  ", "\tovcf\n"])
def test_case_and_surrounding_space(label):
    assert parse_label(label).diseases == {OVCF}


@pytest.mark.parametrize(
    "label",
    [
        "OVCF+KD",
        "KD+OVCF",
        "ovcf + kd",
        "OVCF,KD",
        "ovcf, kd",
        "OVCF;KD",
        "OVCF/KD",
        "OVCF & KD",
        "OVCF|KD",
        "OVCF and KD",
        "OVCF+KD+ovcf",
        "compression fracture + Kummell",
        "Kümmell's disease, acute fracture",
    ],
)
def test_lists(label):
    parsed = parse_label(label)
    assert parsed.diseases == {OVCF, KD}
    assert not parsed.vertebra_only


@pytest.mark.parametrize(
    ("label", "disease"),
    [
        ("compression fracture", OVCF),
        ("Compression Fracture", OVCF),
        ("osteoporotic vertebral compression fracture", OVCF),
        ("vertebral_compression_fracture", OVCF),
        ("compression-fracture", OVCF),
        ("fracture", OVCF),
        ("VCF", OVCF),
        ("old fracture", OF),
        ("Old  Fracture", OF),
        ("healed fracture", OF),
        ("chronic fracture", OF),
        ("Schmorl's node", SN),
        ("Schmorl’s node", SN),
        ("schmorls nodes", SN),
        ("Schmorl", SN),
        ("Kummell", KD),
        ("Kümmell", KD),
        ("KÜMMELL", KD),
        ("Kuemmell", KD),
        ("Kummel", KD),
        ("Kummell's disease", KD),
        ("vacuum cleft", KD),
        ("avascular necrosis", KD),
        ("kyphoplasty", PS),
        ("Vertebroplasty", PS),
        ("PKP", PS),
        ("bone cement", PS),
        ("previous surgery", PS),
    ],
)
def test_synonyms(label, disease):
    assert parse_label(label).diseases == {disease}


def test_decomposed_and_composed_umlaut_are_the_same():
    composed = unicodedata.normalize("NFC", "Kümmell")
    decomposed = unicodedata.normalize("NFD", "Kümmell")
    assert composed != decomposed
    assert parse_label(composed) == parse_label(decomposed) == ParsedLabel(frozenset({KD}))


@pytest.mark.parametrize("label", ["normal", "NORMAL", "Normal", "healthy", "none", "no disease"])
def test_normal(label):
    assert parse_label(label) == ParsedLabel(frozenset(), vertebra_only=False, level=None)


@pytest.mark.parametrize("label", ["vertebra", "Vertebra", "vertebrae", "vertebral body", "VB"])
def test_vertebra_is_a_detection_box_without_disease(label):
    assert parse_label(label) == ParsedLabel(frozenset(), vertebra_only=True, level=None)


def test_vertebra_with_a_disease_is_not_only_a_vertebra():
    assert parse_label("vertebra+OVCF") == ParsedLabel(frozenset({OVCF}), vertebra_only=False)
    assert parse_label("vertebra, normal") == ParsedLabel(frozenset(), vertebra_only=False)


@pytest.mark.parametrize(
    ("label", "level", "diseases"),
    [
        ("L3: OVCF", "L3", {OVCF}),
        ("l3: ovcf", "L3", {OVCF}),
        ("L3 OVCF", "L3", {OVCF}),
        ("L3-OVCF", "L3", {OVCF}),
        ("L3_OVCF", "L3", {OVCF}),
        ("T12: old fracture + SN", "T12", {OF, SN}),
        ("t7 Kümmell", "T7", {KD}),
        ("S1: PS", "S1", {PS}),
        ("C2 normal", "C2", set()),
    ],
)
def test_level_prefix(label, level, diseases):
    parsed = parse_label(label)
    assert parsed.level == level
    assert parsed.diseases == diseases


@pytest.mark.parametrize("level", LEVELS)
def test_every_level_alone_is_a_vertebra_box(level):
    assert parse_label(level) == ParsedLabel(frozenset(), vertebra_only=True, level=level)
    assert parse_label(f"{level.lower()}: vertebra") == ParsedLabel(frozenset(), vertebra_only=True, level=level)


@pytest.mark.parametrize(
    ("label", "term"),
    [
        ("banana", "'banana'"),
        ("OVCF+banana", "'banana'"),
        ("banana, OVCF", "'banana'"),
        ("OVCFX", "'ovcfx'"),
        ("L3: tumour", "'tumour'"),
        ("L6: OVCF", "l6"),  # not a level, so not taken off as a prefix
        ("T13 OVCF", "t13"),
        ("metastasis", "'metastasis'"),
        ("L3OVCF", "'l3ovcf'"),
    ],
)
def test_unknown_term_is_named(label, term):
    with pytest.raises(UnknownLabelError) as info:
        parse_label(label)
    assert term in str(info.value)
    assert "OVCF, OF, SN, KD, PS or NORMAL" in str(info.value)


@pytest.mark.parametrize("label", ["", "   ", "+", ", ,", "L3+"])
def test_empty_label(label):
    if label.strip().startswith("L3"):
        # a level with an empty list after it is only the level
        assert parse_label(label) == ParsedLabel(frozenset(), vertebra_only=True, level="L3")
        return
    with pytest.raises(UnknownLabelError, match="empty label"):
        parse_label(label)


def test_unknown_label_error_is_a_value_error():
    assert issubclass(UnknownLabelError, ValueError)


def test_long_unknown_term_is_cut_short():
    with pytest.raises(UnknownLabelError) as info:
        parse_label("x" * 10_000)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("size", range(len(DISEASES) + 1))
def test_written_labels_parse_back(size):
    for combination in itertools.combinations(DISEASES, size):
        label = disease_label(combination)
        assert parse_label(label).diseases == set(combination)
        assert parse_label(label.lower().replace("+", ", ")).diseases == set(combination)


@settings(max_examples=200, deadline=None)
@given(
    st.sets(st.sampled_from(DISEASES), min_size=1),
    st.sampled_from(["+", ",", " + ", ", ", ";", " and "]),
    st.sampled_from([str.upper, str.lower, str.title]),
    st.sampled_from([None, *LEVELS]),
    st.randoms(use_true_random=False),
)
def test_any_list_of_codes(diseases, separator, case, level, random):
    codes = [d.value for d in diseases]
    random.shuffle(codes)
    label = case(separator.join(codes))
    if level is not None:
        label = f"{level}: {label}"
    assert parse_label(label) == ParsedLabel(frozenset(diseases), vertebra_only=False, level=level)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_any_text_parses_or_raises_unknown_label(text):
    try:
        parsed = parse_label(text)
    except UnknownLabelError as error:
        assert str(error)
        return
    assert parsed.diseases <= set(DISEASES)
    assert parsed.level is None or parsed.level in LEVELS
