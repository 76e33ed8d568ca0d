"""The text repair of ``scripts/print_pdf.py``: CJK radicals in a font's ToUnicode map become
the ideographs they stand for, so that the printed book's Chinese can be searched and copied.
"""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import print_pdf

CMAP = """/CIDInit /ProcSet findresource begin
12 dict begin
begincmap
/CMapName /Adobe-Identity-UCS def
/CMapType 2 def
1 begincodespacerange
<00> <FF>
endcodespacerange
2 beginbfchar
<2E> <2F00>
<3D> <4E0D>
endbfchar
1 beginbfrange
<40> <42> <2F23>
endbfrange
endcmap
CMapName currentdict /CMap defineresource pop
end
end"""


def _pairs(cmap: str) -> dict[str, str]:
    """code → text of a CMap written by _unmap_radicals (bfchar entries only)."""
    body = cmap.split("beginbfchar", 1)[1]
    pairs = {}
    for line in body.splitlines():
        if line.startswith("<"):
            code, dest = line.split()
            pairs[code.strip("<>")] = bytes.fromhex(dest.strip("<>")).decode("utf-16-be")
    return pairs


def test_radicals_become_ideographs_and_other_codes_keep_their_text():
    mapping = print_pdf.unified_ideographs(families=())  # NFKC only, no font needed
    fixed = print_pdf._unmap_radicals(CMAP, mapping)
    assert fixed is not None and "beginbfrange" not in fixed
    # ⼀ U+2F00 is 一; the range <40>..<42> starts at ⼣ U+2F23 (夕), ⼤ (大), ⼥ (女).
    expected = {"2E": "一", "3D": "不", "40": "夕", "41": "大", "42": "女"}
    assert _pairs(fixed) == expected
    assert all(unicodedata.normalize("NFKC", chr(c)) == mapping[c] for c in (0x2F00, 0x2F24))
    assert fixed.startswith(CMAP[:CMAP.index("endcodespacerange")])
    assert fixed.rstrip().endswith("end\nend")


def test_a_cmap_without_radicals_is_left_alone():
    plain = CMAP.replace("<2F00>", "<4E00>").replace("<2F23>", "<5915>")
    assert print_pdf._unmap_radicals(plain, print_pdf.unified_ideographs(families=())) is None


def test_supplement_radicals_follow_the_font_that_draws_them():
    # ⻓ U+2ED3 has no NFKC form; the CJK font draws it with the glyph of 长 U+957F.
    mapping = print_pdf.unified_ideographs()
    if print_pdf.shutil.which("fc-match") is None or 0x2ED3 not in mapping:
        pytest.skip("no Noto Sans CJK SC installed (`sudo apt-get install fonts-noto-cjk`)")
    assert mapping[0x2ED3] == "长"
