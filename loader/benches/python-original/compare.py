"""Times the same three workloads in the Rust runtime (the `loader` CLI) and
in the Python original (its LocalExecutor), whole processes, in interleaved
rounds (each round begins with the next contestant, and each timed run
follows an untimed run of the same command), and prints the medians side
by side with the ratios.

Usage: python compare.py LOADER PLUGIN_DIR ROUNDS  (see compare.sh)
"""

import os
import statistics
import subprocess
import sys
import time

GOAL = 50.0
HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = [
    ('a trivial action', 'noop', 0),
    ('1 M set_progress', 'progress_calls', 1_000_000),
    ('100 k log', 'log_calls', 100_000),
]


def run(command):
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def timed(command):
    # An untimed run of the same command first (hyperfine's --warmup): on
    # this project's VM the first processes after another contestant's run
    # pay for the memory it freed (right after a 1-2 s Python run, even
    # /bin/true takes 5x its usual millisecond), and that toll would fall
    # on whichever contestant comes next, not on the one being measured.
    run(command)
    start = time.perf_counter()
    run(command)
    return time.perf_counter() - start


def loader_command(loader, plugin_dir, action, count, *mode):
    params = '{}' if action == 'noop' else '{"count": %d}' % count
    return [loader, '--plugins', plugin_dir, 'run', 'bench', action, '--params', params, *mode]


def human(seconds):
    return f'{seconds * 1e3:.1f} ms' if seconds < 1 else f'{seconds:.2f} s'


def main():
    loader, plugin_dir, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    python = sys.executable
    rows = []
    for title, action, count in WORKLOADS:
        contestants = [
            ([python, os.path.join(HERE, 'bench_actions.py'), action, str(count)], []),
            (loader_command(loader, plugin_dir, action, count), []),
            (loader_command(loader, plugin_dir, action, count, '--in-process'), []),
        ]
        for round_ in range(rounds):
            # Each round starts with another contestant: on this machine the
            # process run right after the original's (which frees a few
            # hundred MB) pays for it, and a fixed order would always charge
            # the same one.
            for k in range(len(contestants)):
                command, times = contestants[(round_ + k) % len(contestants)]
                times.append(timed(command))
        rows.append((title, *(statistics.median(times) for _, times in contestants)))
    print(f'\nmedians of {rounds} interleaved rounds (each timed run after an untimed one), whole processes, output to /dev/null\n')
    print('| workload | Python original (LocalExecutor) | Rust, isolated (default) | ratio | goal | Rust, --in-process | ratio |')
    print('|---|---|---|---|---|---|---|')
    for title, original, isolated, in_process in rows:
        ratio = original / isolated
        met = ' ✓' if ratio >= GOAL else ' ✗'
        print(
            f'| {title} | {human(original)} | {human(isolated)} | {ratio:.0f}x | ≥ {GOAL:.0f}x{met} '
            f'| {human(in_process)} | {original / in_process:.0f}x |'
        )


if __name__ == '__main__':
    main()
