"""`python -m producer` runs the `editqueue` command line."""

from producer.cli import main

main(prog_name="editqueue")
