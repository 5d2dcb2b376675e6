"""Work whose module takes longer to import than the time limits the tests give it: the child's
start-up (unpickling the work imports this module) must not count against the work's limit."""

import os
import time

IMPORT_SECONDS = 3.0
# slow only in a supervised child (the test process imports it too, to pickle its functions)
if "DEPLOYBENCH_PHASE_FILE" in os.environ:
    time.sleep(IMPORT_SECONDS)


def answer() -> int:
    return 42


class Ready:
    """A worker's server with nothing to build."""

    def echo(self, value: int) -> int:
        return value
