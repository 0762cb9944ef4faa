"""IoU and the paper's IoM against hand-computed values; the matrices; the hit rule's pairing; clustering by IoU."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.annotations.geometry import (
    DETECTION_THRESHOLD,
    HIT_IOM,
    cluster_by_iou,
    intersection_matrix,
    iom,
    iom_matrix,
    iou,
    iou_matrix,
    pair_by_iom,
)
from core.annotations.model import Box

A = Box(0, 0, 10, 10)  # area 100


@pytest.mark.parametrize(
    ("a", "b", "expected_iou", "expected_iom"),
    [
        # identical
        (A, Box(0, 0, 10, 10), 1.0, 1.0),
        (Box(0.5, 0.25, 3.75, 9.5), Box(0.5, 0.25, 3.75, 9.5), 1.0, 1.0),
        # disjoint
        (A, Box(20, 20, 30, 30), 0.0, 0.0),
        (A, Box(0, 11, 10, 20), 0.0, 0.0),
        # touching edges and corners: no area in common
        (A, Box(10, 0, 20, 10), 0.0, 0.0),
        (A, Box(0, 10, 10, 20), 0.0, 0.0),
        (A, Box(10, 10, 20, 20), 0.0, 0.0),
        # one inside the other: inner 5 x 4 = 20, IoU = 20 / 100, IoM = 20 / 20
        (A, Box(2, 2, 7, 6), 0.2, 1.0),
        (Box(2, 2, 7, 6), A, 0.2, 1.0),
        # inside and sharing an edge: 10 x 5 = 50
        (A, Box(0, 0, 10, 5), 0.5, 1.0),
        # partial: overlap 5 x 5 = 25, areas 100 and 15 x 10 = 150, union 225
        (A, Box(5, 5, 20, 15), 25 / 225, 25 / 100),
        # partial: A2 = 4 x 2 = 8, B2 = 2 x 4 = 8, overlap [1,3] x [1,2] = 2, union 14
        (Box(0, 0, 4, 2), Box(1, 1, 3, 5), 2 / 14, 2 / 8),
        # partial, fractional: overlap [2.5, 4] x [0, 1] = 1.5, areas 4 and 6 (1.5 x 4), union 8.5
        (Box(0, 0, 4, 1), Box(2.5, 0, 4, 4), 1.5 / 8.5, 1.5 / 4),
        # a cross: overlap 2 x 2 = 4, areas 20 and 20, union 36
        (Box(0, 4, 10, 6), Box(4, 0, 6, 10), 4 / 36, 4 / 20),
    ],
)
def test_iou_and_iom_by_hand(a, b, expected_iou, expected_iom):
    assert iou(a, b) == pytest.approx(expected_iou, abs=1e-12)
    assert iom(a, b) == pytest.approx(expected_iom, abs=1e-12)
    assert iou(b, a) == pytest.approx(expected_iou, abs=1e-12)
    assert iom(b, a) == pytest.approx(expected_iom, abs=1e-12)
    assert isinstance(iou(a, b), float) and isinstance(iom(a, b), float)


def test_paper_hit_rule_iom_above_half_where_iou_is_below():
    annotated = Box(100, 100, 200, 160)  # 6000
    detected = Box(90, 95, 210, 240)  # bigger, holds the whole annotated box: 120 x 145 = 17400
    assert iom(annotated, detected) == 1.0
    assert iou(annotated, detected) == pytest.approx(6000 / 17400)
    assert iou(annotated, detected) < 0.5 < iom(annotated, detected)


def test_intersection_matrix_values():
    a = [A, Box(5, 5, 15, 15)]
    b = [Box(0, 0, 5, 5), Box(8, 8, 12, 20), Box(50, 50, 60, 60)]
    expected = np.array([[25.0, 4.0, 0.0], [0.0, 28.0, 0.0]])  # [8,10]x[8,10]=4; [8,12]x[8,15]=28
    assert np.array_equal(intersection_matrix(a, b), expected)


def test_matrix_shapes_and_symmetry():
    a = [A, Box(5, 5, 15, 15), Box(2, 2, 7, 6)]
    b = [Box(0, 0, 5, 5), Box(8, 8, 12, 20)]
    for matrix in (iou_matrix, iom_matrix):
        assert matrix(a, b).shape == (3, 2)
        assert matrix(b, a).shape == (2, 3)
        assert np.allclose(matrix(a, b), matrix(b, a).T)
        square = matrix(a, a)
        assert np.allclose(square, square.T)
        assert np.allclose(np.diag(square), 1.0)
        for i, box_a in enumerate(a):
            for j, box_b in enumerate(b):
                single = iou(box_a, box_b) if matrix is iou_matrix else iom(box_a, box_b)
                assert matrix(a, b)[i, j] == single


def test_matrices_of_no_boxes():
    assert iou_matrix([], [A, A]).shape == (0, 2)
    assert iom_matrix([A], []).shape == (1, 0)
    assert iou_matrix([], []).shape == (0, 0)


def test_matrices_accept_arrays():
    boxes = np.array([[0, 0, 10, 10], [5, 5, 20, 15]], dtype=np.float32)
    assert np.allclose(iou_matrix(boxes, boxes), [[1, 25 / 225], [25 / 225, 1]])
    assert np.allclose(iom_matrix(boxes, boxes[:1]), [[1], [0.25]])
    assert np.allclose(iou_matrix(np.array([0, 0, 10, 10]), [A]), [[1.0]])


def test_degenerate_array_rows_give_zero_not_nan():
    flat = np.array([[0, 0, 0, 0], [3, 3, 3, 9]], dtype=float)
    assert np.array_equal(iou_matrix(flat, flat), np.zeros((2, 2)))
    assert np.array_equal(iom_matrix(flat, [A]), np.zeros((2, 1)))


def test_the_paper_s_constants():
    assert HIT_IOM == 0.5 and DETECTION_THRESHOLD == 0.75


def test_pairs_by_hand_one_to_one_in_order_of_the_first_side():
    detected = [Box(0, 41, 10, 59), Box(0, 0, 10, 10), Box(100, 0, 110, 10)]  # a vertebra, another, a stray
    annotated = [Box(0, 1, 10, 11), Box(0, 40, 10, 60), Box(0, 80, 10, 90)]  # the second, the first, a missed one
    assert pair_by_iom(detected, annotated) == [(0, 1), (1, 0)]
    assert pair_by_iom(annotated, detected) == [(0, 1), (1, 0)]
    assert all(type(index) is int for pair in pair_by_iom(detected, annotated) for index in pair)


def test_empty_sides_give_no_pairs():
    assert pair_by_iom([], [A]) == []
    assert pair_by_iom([A], []) == []
    assert pair_by_iom([], []) == []
    assert pair_by_iom(np.zeros((0, 4)), np.zeros((0, 4))) == []


def test_exactly_the_threshold_is_not_a_hit():
    half = Box(0, 5, 10, 15)  # overlap 10 x 5 = 50 of 100: IoM exactly 0.5
    assert iom(A, half) == HIT_IOM
    assert pair_by_iom([A], [half]) == []
    just_over = Box(0, 4.9, 10, 14.9)  # IoM 0.51
    assert pair_by_iom([A], [just_over]) == [(0, 0)]
    assert pair_by_iom([A], [just_over], min_iom=0.6) == []
    assert pair_by_iom([A], [half], min_iom=0.49) == [(0, 0)]


def test_one_box_covering_two_pairs_with_only_one():
    tall = Box(0, 0, 10, 30)
    top, bottom = Box(0, 0, 10, 10), Box(0, 20, 10, 30)  # each wholly inside: IoM 1 with the tall box
    assert pair_by_iom([tall], [top, bottom]) == [(0, 0)]  # an exact tie: the lower index, every time
    assert pair_by_iom([tall], [bottom, top]) == [(0, 0)]
    assert pair_by_iom([top, bottom], [tall]) == [(0, 0)]
    # A box of its own size is preferred to one lying inside it (both IoM 1: IoU breaks the tie), in either order.
    own_size, inside = Box(0, 1, 10, 29), Box(2, 12, 8, 18)
    assert pair_by_iom([tall], [inside, own_size]) == [(0, 1)]
    assert pair_by_iom([tall], [own_size, inside]) == [(0, 0)]


def test_ties_are_resolved_the_same_way_every_time():
    boxes = [A, A, A]
    assert pair_by_iom(boxes, boxes) == [(0, 0), (1, 1), (2, 2)]
    for _ in range(3):
        assert pair_by_iom(boxes, boxes[:2]) == [(0, 0), (1, 1)]


def test_an_overlap_below_the_cut_off_never_costs_a_hit():
    small, big = Box(5, 5, 6, 9), Box(3, 3, 12, 11)
    right, flat = Box(10, 7, 13, 14), Box(0, 5, 9, 7)
    # IoM: small-flat 0.5 (no hit), big-right 8/21 (no hit), big-flat 2/3 (a hit). Maximising the IoM of every
    # pair, hit or not (0.5 + 0.38 > 0.67), would pair small-flat and big-right and find no hit at all.
    assert iom_matrix([small, big], [right, flat]) == pytest.approx(np.array([[0.0, 0.5], [8 / 21, 2 / 3]]))
    assert pair_by_iom([small, big], [right, flat]) == [(1, 1)]


def test_more_hits_win_over_a_higher_total_iom():
    a = [Box(7, 2, 15, 7), Box(3, 6, 10, 10), Box(3, 4, 11, 12)]
    b = [Box(7, 4, 14, 7), Box(7, 9, 12, 10), Box(5, 1, 12, 8)]
    overlaps = iom_matrix(a, b)
    # Two hits a0-b0 (1.0) and a2-b1 (0.8) add up to more IoM than the three hits a0-b2, a1-b1 and a2-b0
    # (0.625 + 0.6 + 4/7): the three are the pairing, as an annotated vertebra found is never traded for IoM.
    assert overlaps[0, 0] + overlaps[2, 1] > overlaps[0, 2] + overlaps[1, 1] + overlaps[2, 0]
    assert pair_by_iom(a, b) == [(0, 2), (1, 1), (2, 0)]


def test_degenerate_boxes_never_hit():
    # A Box refuses zero area, but detector outputs and array inputs may hold such rows: IoM 0 with everything.
    point, line, square = [5, 5, 5, 5], [0, 5, 10, 5], [0, 0, 10, 10]
    assert pair_by_iom(np.array([point, line]), np.array([square, point, line])) == []
    assert pair_by_iom(np.array([square, point]), np.array([point, square])) == [(0, 1)]
    assert pair_by_iom(np.array([point]), [A]) == []


def test_pairs_accept_arrays_and_refuse_a_cut_off_that_is_no_iom():
    boxes = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], dtype=np.float32)
    assert pair_by_iom(boxes, boxes[::-1]) == [(0, 1), (1, 0)]
    with pytest.raises(ValueError, match="min_iom"):
        pair_by_iom(boxes, boxes, min_iom=-0.1)
    with pytest.raises(ValueError, match="min_iom"):
        pair_by_iom(boxes, boxes, min_iom=1.5)


def test_cluster_is_transitive():
    chain = [
        Box(0, 0, 100, 10),
        Box(4, 0, 104, 10),  # IoU with the first: 960 / 1040 = 0.923
        Box(8, 0, 108, 10),  # IoU with the second 0.923, with the first only 920 / 1080 = 0.852
        Box(0, 50, 100, 60),  # apart
    ]
    assert iou(chain[0], chain[1]) >= 0.9 and iou(chain[1], chain[2]) >= 0.9
    assert iou(chain[0], chain[2]) < 0.9
    assert cluster_by_iou(chain, 0.9) == [[0, 1, 2], [3]]
    # the chain's order does not matter: the far ends join through the middle box
    assert cluster_by_iou([chain[2], chain[3], chain[0], chain[1]], 0.9) == [[0, 2, 3], [1]]


def test_cluster_threshold_is_inclusive():
    a, b = Box(0, 0, 100, 100), Box(0, 0, 100, 90)
    assert iou(a, b) == 0.9
    assert cluster_by_iou([a, b], 0.9) == [[0, 1]]
    assert cluster_by_iou([a, b], 0.9000001) == [[0], [1]]


def test_cluster_groups_are_ordered_by_first_index():
    boxes = [Box(0, 50, 10, 60), Box(0, 0, 10, 10), Box(0, 50, 10, 60.5), Box(0, 0, 10, 10.2), Box(0, 90, 9, 99)]
    assert cluster_by_iou(boxes, 0.9) == [[0, 2], [1, 3], [4]]
    assert cluster_by_iou([], 0.9) == []
    assert cluster_by_iou([A], 0.9) == [[0]]
    assert cluster_by_iou(boxes, 0.0) == [[0, 1, 2, 3, 4]]  # IoU >= 0 links everything


boxes = st.builds(
    lambda x, y, w, h: Box(x, y, x + w, y + h),
    st.floats(0, 100),
    st.floats(0, 100),
    st.floats(0.5, 50),
    st.floats(0.5, 50),
)


@settings(max_examples=200, deadline=None)
@given(boxes, boxes)
def test_overlap_properties(a, b):
    u, m = iou(a, b), iom(a, b)
    assert 0.0 <= u <= m <= 1.0 + 1e-12
    assert u == pytest.approx(iou(b, a)) and m == pytest.approx(iom(b, a))
    assert iou(a, a) == pytest.approx(1.0) and iom(a, a) == pytest.approx(1.0)
    inter = intersection_matrix([a], [b])[0, 0]
    assert u == pytest.approx(inter / (a.area + b.area - inter))


@settings(max_examples=100, deadline=None)
@given(st.lists(boxes, max_size=6), st.lists(boxes, max_size=6))
def test_pairs_are_hits_one_to_one_and_as_many_as_possible(first, second):
    pairs = pair_by_iom(first, second)
    assert len({i for i, _ in pairs}) == len(pairs) == len({j for _, j in pairs})
    assert all(iom(first[i], second[j]) > HIT_IOM for i, j in pairs)
    assert [i for i, _ in pairs] == sorted(i for i, _ in pairs)
    reverse = pair_by_iom(second, first)  # either way round: as many pairs, as much IoM (exact ties may differ)
    overlaps = iom_matrix(first, second)
    assert len(reverse) == len(pairs)
    assert sum(overlaps[j, i] for i, j in reverse) == pytest.approx(sum(overlaps[i, j] for i, j in pairs))
    # As many pairs as any one-to-one matching of hits (scipy's maximum bipartite matching).
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    hits = overlaps > HIT_IOM
    if hits.size:
        most = int((maximum_bipartite_matching(csr_matrix(hits.astype(int)), perm_type="column") >= 0).sum())
        assert len(pairs) == most


@settings(max_examples=100, deadline=None)
@given(st.lists(boxes, max_size=8), st.floats(0.05, 1.0))
def test_clusters_are_the_connected_components(items, threshold):
    groups = cluster_by_iou(items, threshold)
    assert sorted(i for g in groups for i in g) == list(range(len(items)))
    linked = iou_matrix(items, items) >= threshold
    where = {i: k for k, g in enumerate(groups) for i in g}
    for i in range(len(items)):
        for j in range(len(items)):
            if linked[i, j]:
                assert where[i] == where[j]
    for group in groups:  # every group is connected: grow from its first member
        reached, frontier = {group[0]}, [group[0]]
        while frontier:
            i = frontier.pop()
            for j in np.nonzero(linked[i])[0]:
                if int(j) not in reached:
                    reached.add(int(j))
                    frontier.append(int(j))
        assert reached == set(group)
    assert [g[0] for g in groups] == sorted(g[0] for g in groups)
