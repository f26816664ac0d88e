"""Renders what a terminal shows after a byte stream (ANSI colours and
cursor movement included) as an HTML page, for a screenshot of a run's
terminal output in the book. Needs the `pyte` terminal emulator.

Usage: terminal_html.py TYPESCRIPT COLUMNS ROWS > page.html
"""

import html
import sys

import pyte

COLOURS = {
    "default": "#d8d8d8",
    "black": "#3b3b3b",
    "red": "#ef5f5f",
    "green": "#6cc26c",
    "brown": "#e5c07b",
    "yellow": "#e5c07b",
    "blue": "#61afef",
    "magenta": "#c678dd",
    "cyan": "#56b6c2",
    "white": "#f0f0f0",
}


def main() -> None:
    typescript, columns, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    screen = pyte.Screen(columns, rows)
    stream = pyte.ByteStream(screen)
    with open(typescript, "rb") as source:
        stream.feed(source.read().replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n"))
    lines = []
    for y in range(rows):
        row = screen.buffer[y]
        cells = []
        for x in range(columns):
            char = row[x]
            colour = COLOURS.get(char.fg, char.fg if char.fg.startswith("#") else COLOURS["default"])
            weight = "font-weight:bold;" if char.bold else ""
            cells.append(f'<span style="color:{colour};{weight}">{html.escape(char.data)}</span>')
        lines.append("".join(cells).rstrip())
    while lines and not screen.display[len(lines) - 1].strip():
        lines.pop()
    print(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><style>"
        "body{margin:0;background:#1e1e1e}"
        "pre{margin:0;padding:14px 18px;font:15px/1.35 'DejaVu Sans Mono',monospace;color:#d8d8d8}"
        "</style></head><body><pre>" + "\n".join(lines) + "</pre></body></html>"
    )


if __name__ == "__main__":
    main()
