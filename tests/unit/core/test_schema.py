import numpy as np
import pytest

from loanxai.core.schema import FeatureSchema, InputError
from tests.conftest import EXAMPLE_APPLICATION
from tests.conftest import SEED_CATEGORICAL as CATEGORICAL_FEATURES
from tests.conftest import SEED_FEATURES as FEATURE_NAMES

SCHEMA = FeatureSchema(
    FEATURE_NAMES, {name: ("A", "B", "Unknown") for name in CATEGORICAL_FEATURES} | {"gender": ("Female", "Male")}
)
RECORD = {name: ("A" if name in CATEGORICAL_FEATURES else 7) for name in FEATURE_NAMES} | {"gender": "Male"}


def test_round_trip_human_readable_to_encoded_and_back():
    encoded = SCHEMA.encode_records([RECORD])
    assert encoded.shape == (1, len(FEATURE_NAMES))
    assert encoded[0, FEATURE_NAMES.index("gender")] == 1.0
    assert encoded[0, FEATURE_NAMES.index("age")] == 7.0
    assert SCHEMA.decode(encoded) == [RECORD]


def test_rows_with_names_in_any_order_equal_records():
    names = list(reversed(FEATURE_NAMES))
    rows = [[RECORD[name] for name in names]]
    np.testing.assert_array_equal(SCHEMA.encode_rows(rows, names), SCHEMA.encode_records([RECORD]))


def test_encoded_rows_pass_through_unchanged():
    encoded = SCHEMA.encode_records([RECORD, RECORD | {"gender": "Female", "age": 40.5}])
    np.testing.assert_array_equal(SCHEMA.encode_rows(encoded.tolist()), encoded)


def test_labels_and_indexes_may_be_mixed_in_a_positional_row():
    row = [RECORD[name] for name in FEATURE_NAMES]
    row[FEATURE_NAMES.index("gender")] = 1
    np.testing.assert_array_equal(SCHEMA.encode_rows([row]), SCHEMA.encode_records([RECORD]))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"gender": "Martian"}, "unknown category 'Martian' for 'gender' in row 0; expected one of: Female, Male"),
        # named: a number is a raw value, never an index
        ({"gender": 1}, "unknown category 1 for 'gender' in row 0; expected one of: Female, Male"),
        ({"gender": 0.5}, "unknown category 0.5 for 'gender'"),
        ({"gender": [1]}, "wrong type for 'gender' in row 0"),
        ({"age": "forty"}, "non-numeric value 'forty' for numeric feature 'age' in row 0"),
        ({"age": "1_000"}, "non-numeric value '1_000' for numeric feature 'age'"),
        ({"age": True}, "non-numeric value True for numeric feature 'age'"),
        ({"age": 10**400}, "for 'age' in row 0 is too large"),
        ({"age": None}, "missing value for 'age' in row 0"),
        ({"age": float("inf")}, "non-finite value inf for 'age'"),
    ],
)
def test_bad_values_are_named(change, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        SCHEMA.encode_records([RECORD | change])
    names = list(FEATURE_NAMES)
    row = [(RECORD | change)[name] for name in names]
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        SCHEMA.encode_rows([row], names)


def test_positional_numbers_in_a_categorical_column_are_indexes():
    row = [RECORD[name] for name in FEATURE_NAMES]
    row[FEATURE_NAMES.index("gender")] = 2
    with pytest.raises(InputError, match="unknown category code 2 for 'gender' in row 0; in rows without names a number "
                                         "is a category's index, 0 to 1"):
        SCHEMA.encode_rows([row])


def test_a_numeric_string_is_the_number_it_reads():
    assert SCHEMA.encode_records([RECORD | {"age": " 40 "}])[0, 0] == 40.0


def test_missing_and_unknown_features_are_named():
    record = dict(RECORD)
    del record["age"]
    with pytest.raises(InputError, match="missing feature 'age' in row 0"):
        SCHEMA.encode_records([record])
    with pytest.raises(InputError, match="unknown feature 'salary' in row 0"):
        SCHEMA.encode_records([RECORD | {"salary": 1}])
    with pytest.raises(InputError, match="unknown feature 'salary'"):
        SCHEMA.encode_rows([[0] * 12], ["salary", *FEATURE_NAMES[1:]])
    with pytest.raises(InputError, match="missing feature 'hours-per-week' in names"):
        SCHEMA.encode_rows([[0] * 11], list(FEATURE_NAMES[:-1]))


def test_wrong_number_of_features_is_named():
    with pytest.raises(InputError, match="wrong number of features in row 1: got 11, expected 12"):
        SCHEMA.encode_rows([[0] * 12, [0] * 11])


def test_schema_survives_the_manifest_round_trip():
    assert FeatureSchema.from_dict(SCHEMA.to_dict()) == SCHEMA
    assert SCHEMA.alibi_category_map()[FEATURE_NAMES.index("gender")] == ["Female", "Male"]


def test_example_application_fits_the_real_schema(artifacts):
    schema = artifacts.classifier_manifest.schema
    X, groups = schema.read_records([EXAMPLE_APPLICATION])
    assert schema.decode(X) == [{name: EXAMPLE_APPLICATION[name] for name in schema.feature_names}]
    assert groups == {"gender": ["Female"], "ethnicity": ["White"], "marital-status": ["Separated"],
                      "relationship": ["Unmarried"], "age": ["25 to under 62"]}


PROTECTED = FeatureSchema(FEATURE_NAMES[:3], {"workclass": ("A", "B")}, protected={"gender": ("Female", "Male")})


def test_protected_attributes_are_validated_and_kept_apart():
    record = {"age": 40, "workclass": "B", "education": 0}
    X, groups = PROTECTED.read_records([record | {"gender": "Female"}, record])
    np.testing.assert_array_equal(X, [[40, 1, 0], [40, 1, 0]])  # the model never sees them
    assert groups == {"gender": ["Female", None]}  # None: not given
    X2, groups2 = PROTECTED.read_rows([["Female", 40, "B", 0]], ["gender", "age", "workclass", "education"])
    np.testing.assert_array_equal(X2, X[:1])
    assert groups2 == {"gender": ["Female"]}
    with pytest.raises(InputError, match="unknown category 'Martian' for 'gender' in row 0; expected one of: Female, Male"):
        PROTECTED.read_records([record | {"gender": "Martian"}])
    with pytest.raises(InputError, match="unknown category 5 for 'gender'"):
        PROTECTED.read_rows([[5, 40, "B", 0]], ["gender", "age", "workclass", "education"])
    with pytest.raises(InputError, match="known features: age, workclass, education, gender"):
        PROTECTED.read_records([record | {"salary": 1}])


BANDED = FeatureSchema(("age", "hours"), {}, protected={"gender": ("Female", "Male")}, bands={"age": (25.0, 62.0)},
                       basis_inputs={"age": ("under 25", "25 to under 62", "62 and over")}, elderly={"age": 62.0},
                       ignored=("education-num",))


def test_a_numeric_attribute_is_counted_by_its_bands_and_ignored_columns_are_accepted():
    X, groups = BANDED.read_records([{"age": 24, "hours": 40, "gender": "Female", "education-num": 9},
                                     {"age": 25, "hours": 40}, {"age": 62, "hours": 40}])
    assert X.tolist() == [[24, 40], [25, 40], [62, 40]]
    assert groups == {"gender": ["Female", None, None], "age": ["under 25", "25 to under 62", "62 and over"]}
    _, by_name = BANDED.read_rows([[40, 61.9, "x"]], names=["hours", "age", "education-num"])
    assert by_name["age"] == ["25 to under 62"]
    assert FeatureSchema.from_dict(BANDED.to_dict()) == BANDED
    with pytest.raises(InputError, match="unknown feature 'colour'"):
        BANDED.read_records([{"age": 30, "hours": 40, "colour": "red"}])


def test_a_banded_protected_attribute_that_is_no_input_must_be_a_number():
    schema = FeatureSchema(("hours",), {}, protected={"age": ("under 25", "25 and over")}, bands={"age": (25.0,)})
    assert schema.read_records([{"hours": 1, "age": 30}])[1] == {"age": ["25 and over"]}
    with pytest.raises(InputError, match="'age' in row 0 must be a number"):
        schema.read_records([{"hours": 1, "age": "old"}])


def test_an_error_echoes_a_bounded_prefix_of_the_value():
    with pytest.raises(InputError, match=r"unknown category 'xxxxxxxxxxxxxxxxxxx\.\.\. \(1000002 characters\) for 'gender'"):
        SCHEMA.encode_records([RECORD | {"gender": "x" * 1_000_000}])
