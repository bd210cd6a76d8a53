"""`python -m emulator ...` runs the same command as `editqueue emulator`."""

from emulator.cli import emulator_command

if __name__ == "__main__":
    emulator_command()
