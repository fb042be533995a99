"""The dataset description and the data it names: every problem stops with a message naming it."""
import numpy as np
import pytest
import yaml

from loanxai.core.schema import FeatureSchema
from loanxai.data.dataset import LABEL, DataError, group_column, load_dataset
from loanxai.data.description import DEFAULT_DESCRIPTION, DescriptionError, load_description

N = 200


def applications(n=N, seed=0):
    """A small lending table: income, a purpose, a region (protected), and a decision 'good'/'bad'."""
    rng = np.random.default_rng(seed)
    rows = ["income;purpose;region;outcome"]
    for i in range(n):
        income = int(rng.integers(10, 100))
        purpose = ["car", "house", "study"][i % 3]
        region = ["north", "south"][i % 2]
        outcome = "good" if (income + 7 * i) % 3 else "bad"
        rows.append(f"{income};{purpose};{region};{outcome}")
    return rows


DESCRIPTION = {
    "name": "tiny",
    "source": {"path": "tiny.csv", "separator": ";"},
    "label": {"column": "outcome", "approved": ["good"], "rejected": ["bad"]},
    "features": [{"name": "income", "kind": "numeric"}, {"name": "purpose", "kind": "categorical"}],
    "protected": [{"name": "region", "basis": ["national origin"]}],
    "split": {"test_fraction": 0.25, "seed": 1},
}


def write(tmp_path, description=None, rows=None, **changes):
    (tmp_path / "tiny.csv").write_text("\n".join(applications() if rows is None else rows) + "\n")
    document = {**(description or DESCRIPTION), **changes}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def load(tmp_path, **kwargs):
    return load_dataset(load_description(write(tmp_path, **kwargs)))


def test_a_small_dataset_loads_with_defaults(tmp_path):
    dataset = load(tmp_path)
    assert (len(dataset.train), len(dataset.test)) == (150, 50)
    assert dataset.schema.feature_names == ("income", "purpose")
    assert dataset.schema.category_map == {"purpose": ("car", "house", "study")}
    assert dataset.schema.protected == {"region": ("north", "south")}
    assert set(dataset.train.columns) == {"income", "purpose", "region", LABEL}
    description = dataset.description
    assert description.missing_category == "Unknown" and description.strip and description.max_categories == 100
    assert description.document["missing"]["numeric"] == "median"
    # the decision policy, the search and the gate take their documented defaults
    assert description.decision == {"approval_rate": "base"}
    assert description.selection == {"folds": 5, "tolerance": 0.01, "families": ["forest", "boosting"],
                                     "choose_from": ["forest"], "reliable_approvals": 100}
    assert description.gate["min_adverse_impact_ratio"] == 0.8 and description.screened == ("region",)
    assert description.protected["region"].bases == ("national origin",) and not description.protected["region"].model_input
    assert str(tmp_path / "tiny.csv") in dataset.source_sha256


@pytest.mark.parametrize("change, message", [
    ({"source": {"path": "tiny.csv", "sperator": ";"}}, r"source.sperator: unknown key; did you mean 'separator'\?"),
    ({"labels": {}}, r"labels: unknown key; did you mean 'label'\?"),
    ({"features": [{"name": "income", "kind": "numeric", "knd": 1}]}, r"features\[0\].knd: unknown key; did you mean 'kind'\?"),
    ({"features": [{"name": "income", "kind": "number"}]}, r"features\[0\].kind: 'number' is not one of"),
    ({"label": {"column": "outcome", "approved": ["good"]}}, "label: 'rejected' is required"),
    ({"features": [{"name": "income", "kind": "numeric"}, {"name": "income", "kind": "numeric"}]},
     r"features: 'income' is listed twice \(features\[0\] and features\[1\]\)"),
    ({"features": [{"name": "outcome", "kind": "categorical"}]}, "'outcome' is the label column"),
    ({"protected": [{"name": "income", "basis": ["age"]}]}, "a protected attribute is never a model input unless model_input"),
    ({"protected": [{"name": "region", "basis": ["race"], "model_input": True}]}, "must also be listed in features"),
    ({"protected": [{"name": "region"}]}, r"protected\[0\]: 'basis' is required"),
    ({"protected": [{"name": "region", "basis": ["postcode"]}]}, r"protected\[0\].basis\[0\]: 'postcode' is not one of"),
    ({"protected": [{"name": "region", "basis": ["age"], "kind": "numeric"}]}, "a numeric protected attribute needs bands"),
    ({"protected": [{"name": "region", "basis": ["age"], "kind": "numeric", "bands": [60, 25]}]},
     "bands are the increasing edges"),
    ({"features": [{"name": "income", "kind": "numeric", "actionable": True}, {"name": "purpose", "kind": "categorical"}],
      "protected": [{"name": "income", "basis": ["age"], "model_input": True, "bands": [62]}]},
     "a protected attribute is never a recourse change"),
    ({"features": [{"name": "income", "kind": "numeric"}, {"name": "purpose", "kind": "categorical"}],
      "protected": [{"name": "purpose", "basis": ["age"], "model_input": True}]}, "age as a model input is numeric"),
    ({"decision": {"approval_rate": 0.3, "cutoff": 0.5}}, "decision: give exactly one of approval_rate, cutoff"),
    ({"decision": {"approval_rate": 1.5}}, "decision.approval_rate"),
    ({"selection": {"folds": 1}}, r"selection.folds: 1 is less than the minimum of 2"),
    ({"selection": {"choose_from": ["bagging"]}}, r"choose_from\[0\]: 'bagging' is not one of \['forest', 'boosting'\]"),
    ({"selection": {"families": ["boosting"]}}, r"selection.choose_from: 'forest' is not among selection.families \(boosting\)"),
    ({"gate": {"screen": ["gender"]}}, "gate.screen: 'gender' is not a protected attribute"),
    ({"label": {"column": "outcome", "approved": ["good"], "rejected": ["good"]}}, "listed as both approved and rejected"),
    ({"split": {"test_fraction": 0.2, "test_rows": 10}}, "give exactly one of test_fraction, test_rows, test_path"),
    ({"source": {"path": "tiny.csv", "package": "no_such_package_here"}}, "no installed package 'no_such_package_here'"),
    ({"example": {"income": 3}}, "example: must give every model input.*missing: 'purpose'"),
])
def test_description_errors_name_the_key(tmp_path, change, message):
    with pytest.raises(DescriptionError, match=message) as error:
        load_description(write(tmp_path, **change))
    assert str(tmp_path / "tiny.yaml") in str(error.value)


def test_missing_description_file(tmp_path):
    with pytest.raises(DescriptionError, match="dataset description not found: .*nothing.yaml"):
        load_description(tmp_path / "nothing.yaml")


def test_missing_data_file(tmp_path):
    path = write(tmp_path, source={"path": "elsewhere.csv", "separator": ";"})
    with pytest.raises(DataError, match=r"data file not found: .*elsewhere.csv \(source of tiny.yaml\)"):
        load_dataset(load_description(path))


def test_missing_column_lists_the_columns_found(tmp_path):
    rows = [line.replace("purpose", "goal") for line in applications()]
    found = "columns found: income, goal, region, outcome"
    with pytest.raises(DataError, match=r"column\(s\) 'purpose' \(feature\) not found; " + found):
        load(tmp_path, rows=rows)


def test_protected_attribute_that_is_not_a_column(tmp_path):
    with pytest.raises(DataError, match=r"'gender' \(protected attribute\) not found; columns found: income, purpose"):
        load(tmp_path, protected=[{"name": "gender", "basis": ["sex"]}])


def test_label_value_neither_approved_nor_rejected(tmp_path):
    rows = applications()
    rows[3] = rows[3].rsplit(";", 1)[0] + ";maybe"
    rows[8] = rows[8].rsplit(";", 1)[0] + ";maybe"
    with pytest.raises(DataError, match=r"label column 'outcome': 2 row\(s\) hold a value that is neither approved \(good\) "
                                        r"nor rejected \(bad\): 'maybe' \(2 rows\); first at lines 4, 9"):
        load(tmp_path, rows=rows)


def test_non_numeric_value_in_a_numeric_column_names_the_lines(tmp_path):
    rows = applications()
    rows[5] = "lots;" + rows[5].split(";", 1)[1]
    with pytest.raises(DataError, match=r"numeric feature 'income' has 1 non-numeric value\(s\): 'lots' \(line 6\)"):
        load(tmp_path, rows=rows)


def test_too_many_categories(tmp_path):
    rows = [rows if i == 0 else rows.replace(";car;", f";car{i};") for i, rows in enumerate(applications())]
    with pytest.raises(DataError, match=r"categorical column 'purpose' has \d+ distinct labels, more than the limit of 50 "
                                        r"\(limits.max_categories\)"):
        load(tmp_path, rows=rows, limits={"max_categories": 50})


def test_constant_feature(tmp_path):
    rows = [line if i == 0 else line.replace(";house;", ";car;").replace(";study;", ";car;")
            for i, line in enumerate(applications())]
    with pytest.raises(DataError, match="feature 'purpose' holds one value only \\('car'\\) in the training rows"):
        load(tmp_path, rows=rows)


def test_fewer_rows_than_the_minimum(tmp_path):
    with pytest.raises(DataError, match=r"only 200 usable rows; at least 500 are needed \(limits.min_rows\)"):
        load(tmp_path, limits={"min_rows": 500})


def test_held_out_set_with_one_class(tmp_path):
    held = "\n".join(f"{i};car;north;good" for i in range(30))
    (tmp_path / "held.csv").write_text("income;purpose;region;outcome\n" + held + "\n")
    with pytest.raises(DataError, match=r"the held-out set \(30 rows\) holds only approved applications"):
        load(tmp_path, split={"test_path": "held.csv"})


def test_missing_values_become_a_category_or_the_median(tmp_path):
    rows = applications()
    rows[1] = ";" + rows[1].split(";", 1)[1]                    # income missing
    rows[2] = rows[2].replace(";car;", ";?;").replace(";house;", ";?;").replace(";study;", ";?;")
    dataset = load(tmp_path, rows=rows, missing={"markers": ["", "?"], "category": "(none)"})
    assert dataset.schema.nullable == {"income", "purpose"}
    assert "(none)" in dataset.schema.category_map["purpose"]
    assert dataset.frame["income"].isna().sum() == 1
    dropped = load(tmp_path, rows=rows, missing={"markers": ["", "?"], "categorical": "drop", "numeric": "drop"})
    assert len(dropped.frame) == N - 2 and not dropped.schema.nullable


def test_numeric_labels_and_value_labels(tmp_path):
    rows = [line.replace(";good", ";1").replace(";bad", ";0").replace(";north;", ";1;").replace(";south;", ";0;")
            for line in applications()]
    dataset = load(tmp_path, rows=rows, label={"column": "outcome", "approved": [1], "rejected": ["0.0"]},
                   protected=[{"name": "region", "basis": ["national origin"], "labels": {1: "N", 0: "S"}}])
    assert dataset.schema.protected == {"region": ("N", "S")}
    assert 0 < dataset.frame[LABEL].mean() < 1


@pytest.mark.parametrize("path", [DEFAULT_DESCRIPTION, DEFAULT_DESCRIPTION.parent / "loanapp.yaml"])
def test_schema_round_trip_for_both_datasets(path):
    dataset = load_dataset(load_description(path))
    schema = dataset.schema
    assert FeatureSchema.from_dict(schema.to_dict()) == schema
    X = schema.encode_frame(dataset.test)
    records = schema.decode(X)
    np.testing.assert_array_equal(schema.encode_records(records), X)
    with_groups = [r | {name: dataset.test[name].iloc[i] for name in schema.protected} for i, r in enumerate(records)]
    X2, groups = schema.read_records(with_groups)
    np.testing.assert_array_equal(X2, X)
    assert groups == {name: group_column(dataset.test, schema, name).tolist() for name in schema.groups}


def test_the_two_datasets_differ_as_the_issue_asks():
    census, loanapp = (load_dataset(load_description(DEFAULT_DESCRIPTION.parent / f"{n}.yaml")) for n in ("census", "loanapp"))
    assert set(census.schema.feature_names).isdisjoint(loanapp.schema.feature_names)
    assert census.schema.n_features != loanapp.schema.n_features
    assert loanapp.schema.nullable and "gender" not in loanapp.description.protected
    assert loanapp.description.approved == ("1.0", "2.0")  # a numeric decision, no leading spaces


def test_age_is_declared_in_bands_and_is_an_input_under_the_elderly_rule():
    census = load_description(DEFAULT_DESCRIPTION)
    age = census.protected["age"]
    assert (age.model_input, age.bands, age.elderly, age.groups) == (True, (25, 62), 62.0,
                                                                     ("under 25", "25 to under 62", "62 and over"))
    assert set(census.protected) == {"gender", "ethnicity", "marital-status", "relationship", "age"}
    assert all(census.protected[name].why for name in ("marital-status", "relationship", "age"))
    # every declared basis but age stays out of the model
    assert set(census.feature_names) & set(census.protected) == {"age"}
    schema = load_dataset(census).schema
    assert schema.elderly == {"age": 62.0} and schema.basis_inputs == {"age": age.groups}


def test_a_fixed_cutoff_is_a_policy_of_its_own(tmp_path):
    description = load_description(write(tmp_path, decision={"cutoff": 0.4}))
    assert description.decision == {"cutoff": 0.4}


def test_a_file_without_a_header_with_comments_and_blank_lines(tmp_path):
    rows = applications()
    body = ["|1x3 Cross validator", *rows[1:100], "", "   ", "| a note", *rows[100:]]
    source = {"path": "tiny.csv", "separator": ";", "columns": rows[0].split(";"), "comment": "|"}
    dataset = load(tmp_path, rows=body, source=source)
    assert len(dataset.train) + len(dataset.test) == N  # the comment and blank lines skipped
    assert dataset.frame["income"].sum() == sum(int(r.split(";")[0]) for r in rows[1:])


@pytest.mark.parametrize("rows, message", [
    (["1;car;north", "2;car;south;good"], r"1 row\(s\) hold another number of values than the 4 columns source.columns "
                                         r"names: line 1 holds 3"),
    (["1;car;north;good", "2;car;south;good;x"], "line 2 holds 5"),
])
def test_a_row_of_the_wrong_length_names_its_line(tmp_path, rows, message):
    source = {"path": "tiny.csv", "separator": ";", "columns": ["income", "purpose", "region", "outcome"]}
    with pytest.raises(DataError, match=message):
        load(tmp_path, rows=rows, source=source)


def test_without_columns_the_header_counts_too(tmp_path):
    rows = applications()
    rows[7] += ";extra"
    with pytest.raises(DataError, match="columns the header names: line 8 holds 5"):
        load(tmp_path, rows=rows)


def test_source_columns_may_not_repeat_a_name(tmp_path):
    source = {"path": "tiny.csv", "columns": ["income", "income"]}
    with pytest.raises(DescriptionError, match="source.columns: 'income' is listed twice"):
        load_description(write(tmp_path, source=source))


def test_a_raw_code_that_is_another_label_is_refused(tmp_path):
    rows = ["income;purpose;region;outcome"] + [f"{10 + i};{['1', '2', 'car'][i % 3]};north;{['good', 'bad'][i % 2]}"
                                                for i in range(N)]
    features = [{"name": "income", "kind": "numeric"},
                {"name": "purpose", "kind": "categorical", "labels": {1: "car", 2: "1"}}]  # is "1" car, or the label "1"?
    with pytest.raises(DataError, match="'purpose': the raw value 1 means 'car' \\(labels\\) and is also the label '1'"):
        load(tmp_path, rows=rows, features=features)
