"""Colours for diagnoses: the Okabe-Ito palette, which stays distinct under the common colour-vision deficiencies.

Plain data, shared by the desktop overlays and the images core draws (phantom previews, reports)."""

from __future__ import annotations

from collections.abc import Iterable

from core.annotations.model import Disease

DISEASE_COLOURS: dict[str, str] = {
    "OVCF": "#D55E00",  # vermillion
    "KD": "#CC79A7",  # reddish purple
    "OF": "#E69F00",  # orange
    "PS": "#0072B2",  # blue
    "SN": "#56B4E9",  # sky blue
    "NORMAL": "#009E73",  # bluish green
}
#: When a vertebra has several diseases, the box takes the colour of the first in this order.
PRIORITY = ("OVCF", "KD", "OF", "PS", "SN")


def colour_for(diseases: Iterable[Disease]) -> str:
    codes = {d.value for d in diseases}
    for code in PRIORITY:
        if code in codes:
            return DISEASE_COLOURS[code]
    return DISEASE_COLOURS["NORMAL"]
