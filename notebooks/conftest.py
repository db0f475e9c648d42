"""nbval does not re-execute the Chinese edition (notebooks/zh/).

Its code cells and outputs are proven identical to the English notebooks' by
tests/test_editions.py, so executing it would only double CI time. A path given on the command
line is still collected: `pytest notebooks/zh/day1_tokenize.ipynb` runs that notebook under nbval.
"""
collect_ignore_glob = ["zh/*"]
