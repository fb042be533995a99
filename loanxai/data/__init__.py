"""A lender's data: the dataset description, and the tables it turns into.

- :mod:`~loanxai.data.description`: the YAML file that says where the data is and what it
  means (its format is checked with a JSON Schema, :data:`~loanxai.data.description.SCHEMA`);
- :mod:`~loanxai.data.dataset`: the data read, cleaned, checked and split as the description says.

Bad data stops here with a :class:`~loanxai.errors.DataError` naming the file, the column and
the rows. Used by training, the report and the tools; never by serving.
"""

__all__ = ["dataset", "description"]
