from datetime import timedelta
from typing import Any

class Logger:
    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta
    ) -> dict[str, Any]: ...
