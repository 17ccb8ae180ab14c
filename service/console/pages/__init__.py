"""One module per page group of the console; each holds an ``APIRouter`` of ``ConsoleRoute``."""
