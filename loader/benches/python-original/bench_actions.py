"""The benchmark plugin's actions, written for the Python original
(synapse-sdk 2026.2.17): the same work as the Rust bench plugin's `noop`,
`progress_calls` and `log_calls` (tests/fixtures/bench/bench-plugin).

Run one with the original's LocalExecutor, in this process, as its
`synapse plugin run --mode local` does:

    python bench_actions.py ACTION COUNT
"""

import sys

from pydantic import BaseModel
from synapse_sdk.plugins.action import BaseAction
from synapse_sdk.plugins.executors.local import LocalExecutor


class Count(BaseModel):
    count: int = 0


class Noop(BaseAction[Count]):
    def execute(self):
        return {}


class ProgressCalls(BaseAction[Count]):
    def execute(self):
        count = self.params.count
        for i in range(1, count + 1):
            self.ctx.set_progress(i, count, 'batch')
        return {'calls': count}


class LogCalls(BaseAction[Count]):
    def execute(self):
        for i in range(self.params.count):
            self.ctx.log('tick', {'i': i, 'loss': 0.25})
        return {'calls': self.params.count}


ACTIONS = {'noop': Noop, 'progress_calls': ProgressCalls, 'log_calls': LogCalls}

if __name__ == '__main__':
    action, count = sys.argv[1], int(sys.argv[2])
    LocalExecutor(env={}).execute(ACTIONS[action], {'count': count})
