"""Spreadsheet functions and the reader and validator of filled plans: a pure core over pandas."""
