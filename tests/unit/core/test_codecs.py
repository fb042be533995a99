import numpy as np
import pytest

from loanxai.core.codecs import (
    application_ids,
    explain_parameters,
    features_from_message,
    read_decision_request,
    read_feedback,
)
from loanxai.core.schema import FeatureSchema, InputError
from tests.conftest import SEED_CATEGORICAL as CATEGORICAL_FEATURES
from tests.conftest import SEED_FEATURES as FEATURE_NAMES

SCHEMA = FeatureSchema(FEATURE_NAMES, {name: ("A", "B") for name in CATEGORICAL_FEATURES})
RECORD = {name: ("B" if name in CATEGORICAL_FEATURES else 3) for name in FEATURE_NAMES}
ENCODED = [[1 if name in CATEGORICAL_FEATURES else 3 for name in FEATURE_NAMES]]


@pytest.mark.parametrize(
    "message",
    [
        {"data": {"ndarray": ENCODED}},
        {"data": {"names": None, "ndarray": ENCODED}},  # SeldonClient sends names: null
        {"data": {"tensor": {"shape": [1, 12], "values": ENCODED[0]}}},
        {"data": {"names": list(FEATURE_NAMES), "ndarray": [[RECORD[n] for n in FEATURE_NAMES]]}},
        {"jsonData": [RECORD]},
        {"jsonData": RECORD},
    ],
)
def test_every_form_gives_the_same_rows(message):
    np.testing.assert_array_equal(features_from_message(message, SCHEMA, max_rows=10), np.array(ENCODED, float))


@pytest.mark.parametrize(
    "message, problem",
    [
        ([1, 2], "must be a JSON object"),
        ({"strData": "x"}, "needs 'data'"),
        ({"data": {"ndarray": []}}, "empty batch"),
        ({"jsonData": []}, "empty batch"),
        ({"data": {"ndarray": ENCODED * 11}}, "batch of 11 rows is larger than the limit of 10"),
        ({"data": {"ndarray": [[1, 2]]}}, "wrong number of features in row 0: got 2, expected 12"),
        ({"data": {"ndarray": [ENCODED[0], [1]]}}, "wrong number of features in row 1"),
        ({"data": {"ndarray": [3]}}, "row 0 is not a list"),
        ({"data": {"tensor": {"shape": [2, 12], "values": ENCODED[0]}}}, "must hold rows x columns = 24"),
        ({"data": {"tensor": {"shape": [12], "values": ENCODED[0]}}}, r"must be \[rows, columns\]"),
        ({"data": {"tftensor": {}}}, "must hold 'ndarray' or 'tensor'"),
        ({"jsonData": "age=3"}, "must be an object or a list"),
        ({"jsonData": [1]}, "row 0 is not an object"),
        # sizes are checked before anything is built: 54 bytes asking for 30 million rows
        ({"data": {"tensor": {"shape": [30_000_000, 0], "values": []}}}, "batch of 30000000 rows is larger than the limit"),
        ({"data": {"tensor": {"shape": [10**400, 1], "values": []}}}, r"must be \[rows, columns\]"),
        ({"data": {"ndarray": [[10**400] + ENCODED[0][1:]]}}, r"value 10000000000000000000\.\.\. \(401 characters\) for "
                                                             "'age' in row 0 is too large"),
    ],
)
def test_bad_messages_are_named(message, problem):
    with pytest.raises(InputError, match=problem):
        features_from_message(message, SCHEMA, max_rows=10)


@pytest.mark.parametrize("message, problem", [
    ({"meta": [1]}, "'meta' must be an object \\(tags, puid\\), got list"),
    ({"meta": "x"}, "'meta' must be an object"),
    ({"meta": {"puid": ["x"]}}, "'meta.puid' must be a string of 1 to 128 characters"),
    ({"meta": {"tags": {"seed": 10**400}}}, "explain parameter 'seed' must be an integer from 0 to 2147483647, got "
                                             "10000000000000000000\\.\\.\\. \\(401 characters\\)"),
])
def test_no_json_value_is_a_500(message, problem):
    with pytest.raises(InputError, match=problem):
        explain_parameters(message, 0.95, 12)


def test_reasons_too_large_for_a_float_are_a_400():
    with pytest.raises(InputError, match="prediction parameter 'reasons' must be true, false or an integer"):
        read_decision_request({"data": {"ndarray": ENCODED}, "meta": {"tags": {"reasons": 10**400}}}, SCHEMA, 10, 4)


def test_a_decision_request_is_read_once_into_what_every_step_receives():
    message = {"data": {"ndarray": ENCODED}, "meta": {"puid": "r-1", "tags": {"reasons": True, "batch_id": "b",
                                                                              "application_ids": ["A-1"]}}}
    request = read_decision_request(message, SCHEMA, 10, 4)
    np.testing.assert_array_equal(request.X, np.array(ENCODED, float))
    assert (request.reasons, request.purpose, request.puid, request.application_ids) == (4, "decision", "r-1", ["A-1"])
    assert request.entered == [ENCODED[0]] and request.tags["batch_id"] == "b" and not request.sampling
    sampled = read_decision_request({"data": {"ndarray": ENCODED}, "meta": {"tags": {"purpose": "explanation"}}},
                                    SCHEMA, 10, 4)
    assert sampled.sampling and sampled.entered is None and sampled.puid is None  # made-up rows are never recorded
    with pytest.raises(InputError, match="'meta.tags.application_ids' must be a list of one string"):
        read_decision_request({"data": {"ndarray": ENCODED}, "meta": {"tags": {"application_ids": ["A", "B"]}}},
                              SCHEMA, 10, 4)


def test_explain_parameters_default_and_override():
    assert explain_parameters({}, 0.95, 12) == {"kind": "anchor", "seed": 0, "threshold": 0.95}
    assert explain_parameters({"meta": {"tags": {"threshold": 0.9, "beam_size": 2.0}}}, 0.95, 12) == {
        "kind": "anchor", "seed": 0, "threshold": 0.9, "beam_size": 2,
    }
    assert explain_parameters({"meta": {"tags": {"kind": "recourse", "seed": 7}}}, 0.95, 12) == {
        "kind": "recourse", "seed": 7, "k": 3,
    }


@pytest.mark.parametrize(
    "tags, problem",
    [
        ({"threshold": 1.5}, r"'threshold' must be a number in \(0.0, 1.0\], got 1.5"),
        ({"threshold": "high"}, "'threshold' must be a number"),
        ({"beam_size": 0}, "'beam_size' must be an integer from 1 to 10"),
        ({"beam_size": 1.5}, "'beam_size' must be an integer"),
        ({"colour": 1}, "unknown explain parameter 'colour'"),
        ({"max_anchor_size": 13}, "'max_anchor_size' must be an integer from 1 to 12"),
    ],
)
def test_bad_explain_parameters_are_named(tags, problem):
    with pytest.raises(InputError, match=problem):
        explain_parameters({"meta": {"tags": tags}}, 0.95, 12)


@pytest.mark.parametrize("truth", [
    {"data": {"ndarray": [1, 0]}},
    {"data": {"ndarray": [["approved"], ["rejected"]]}},
    {"data": {"ndarray": [[1.0], [0.0]]}},
    {"data": {"tensor": {"shape": [2, 1], "values": [1, 0]}}},
])
def test_feedback_truth_forms(truth):
    outcomes = read_feedback({"response": {"data": {"ndarray": [[0.3, 0.7], [0.8, 0.2]]}}, "truth": truth}, SCHEMA, 10, 0.5)
    assert outcomes.truth.tolist() == [True, False] and outcomes.predicted.tolist() == [True, False]
    assert outcomes.groups == {}  # no protected attributes in this schema, no request


def test_feedback_reads_groups_from_the_request():
    schema = FeatureSchema(FEATURE_NAMES, {name: ("A", "B") for name in CATEGORICAL_FEATURES}, protected={"sex": ("f", "m")})
    outcomes = read_feedback({"request": {"jsonData": [RECORD | {"sex": "f"}, RECORD]},
                              "response": {"data": {"ndarray": [[0.3, 0.7], [0.8, 0.2]]}},
                              "truth": {"data": {"ndarray": [1, 1]}}}, schema, 10, 0.5)
    assert outcomes.groups == {"sex": ["f", None]}


# --- what the record keeps of a request ------------------------------------------------------------------


ENTERING = FeatureSchema(("age", "occupation"), {"occupation": ("Sales", "S", "T")}, protected={"gender": ("Female", "F", "M")})


def test_a_request_keeps_each_application_as_entered_without_its_protected_attributes():
    def entered(message):
        return read_decision_request(message, ENTERING, 10, 4).entered

    names = ["age", "gender", "occupation"]
    assert entered({"data": {"names": names, "ndarray": [[30, "Female", "Sales"]]}}) == [{"age": 30, "occupation": "Sales"}]
    tensor = {"data": {"names": names, "tensor": {"shape": [2, 3], "values": [30, "F", "S", 40, "M", "T"]}}}
    assert entered(tensor) == [{"age": 30, "occupation": "S"}, {"age": 40, "occupation": "T"}]
    assert entered({"data": {"ndarray": [[30, 2]]}}) == [[30, 2]]
    assert entered({"jsonData": {"age": 30, "gender": "Female", "occupation": "S"}}) == [{"age": 30, "occupation": "S"}]


@pytest.mark.parametrize("ids, problem", [
    ("A-1", "a list of 2 strings"), (["A-1"], "a list of 2 strings"), (["A-1", 2], "item 1 must be a string of 1 to 128"),
    (["A-1", "A" * 129], "1 to 128 characters"), (["A-1", "A-1"], "the same id twice"),
])
def test_application_ids_are_one_distinct_string_per_application(ids, problem):
    with pytest.raises(InputError, match=problem):
        application_ids({"meta": {"tags": {"application_ids": ids}}}, 2)
    assert application_ids({"meta": {"tags": {"application_ids": ["A-1", "A-2"]}}}, 2) == ["A-1", "A-2"]
    assert application_ids({}, 2) == [None, None]
    with pytest.raises(InputError, match="a list of one string, each of 1 to 128 characters"):
        application_ids({"meta": {"tags": {"application_ids": ["A-1", "A-2"]}}}, 1)
