"""A local HTTP stand-in for the Gemini image API: validation, signatures, images, faults."""

from emulator.config import FAULT_NAMES, EmulatorConfig
from emulator.server import RunningEmulator, serve_forever, start_emulator

__all__ = ["FAULT_NAMES", "EmulatorConfig", "RunningEmulator", "serve_forever", "start_emulator"]
