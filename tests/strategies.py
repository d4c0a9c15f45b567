"""Hypothesis strategies shared by the whole-run property tests (test_faults_input.py) and the reader's
own (test_bobo_csv.py): duty events, and files of valid layout A rows between arbitrary bytes."""
from typing import List, Tuple

from hypothesis import strategies as st

from testsite import AMBIGUOUS, UNMAPPED, Ev

SIX = [str(10001 + i) for i in range(6)]  # the collar numbers a fault site maps
EVENT_IDS = st.sampled_from(SIX[:4] + ["010002", " 10003 ", UNMAPPED, AMBIGUOUS])
STAMPS = st.sampled_from(["20240617065500", "20240617065500", "20240617070000", "20240617143000",
                          "20240617150000", "20240618065500"])
CREATED = st.sampled_from(["20240617070000", "20240617070001", "20240617150500"])
EVENTS = st.builds(Ev, st.booleans(), EVENT_IDS, STAMPS, CREATED)
LINE_ENDS = st.sampled_from(["\n", "\r\n"])
CSV_NOISE = st.text(alphabet=st.sampled_from(list(',"\'\r\n \t;=+-@BONF0123456789.\u00e9\u2028\x1a\x00')),
                    max_size=40).map(lambda t: t.encode("utf-8"))
GARBAGE = st.one_of(st.binary(max_size=60), CSV_NOISE)


@st.composite
def file_with_garbage(draw) -> Tuple[bytes, List[Ev]]:
    """Valid layout A rows, each on a line of its own, between arbitrary bytes."""
    parts: List[bytes] = []
    events: List[Ev] = []
    for item in draw(st.lists(st.one_of(GARBAGE, EVENTS), max_size=12)):
        if isinstance(item, Ev):
            end = draw(LINE_ENDS)
            parts.append((end + item.row_a() + end).encode())
            events.append(item)
        else:
            parts.append(item)
    if draw(st.booleans()):
        parts.insert(0, b"\xef\xbb\xbf")
    return b"".join(parts), events


UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def is_text(data: bytes) -> bool:
    """As bobo_csv.detect_encoding decides: UTF-16 after its byte-order mark, else UTF-8 or Windows-1252; no NUL."""
    for encoding in ("utf-16",) if data[:2] in UTF16_BOMS else ("utf-8-sig", "cp1252"):
        try:
            return "\x00" not in data.decode(encoding)
        except UnicodeDecodeError:
            pass
    return False
