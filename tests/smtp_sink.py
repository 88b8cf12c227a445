"""An SMTP server for the mailer's tests: accepts every message and writes it, as received, to a
file of its own in a directory (written to a dot-file first, then renamed).

    python3 tests/smtp_sink.py --port PORT --dir DIR [--host 127.0.0.1]

Prints "ready" on stdout once it listens, then serves until killed. Needs aiosmtpd
(`python3 -m pip install aiosmtpd`).
"""

import argparse
import itertools
import os
import sys
import threading

try:
    from aiosmtpd.controller import Controller
except ImportError:
    sys.exit("smtp_sink: aiosmtpd is not installed: python3 -m pip install aiosmtpd")


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.numbers = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            number = next(self.numbers)
        name = f"{number:06}.eml"
        temporary = os.path.join(self.directory, "." + name)
        with open(temporary, "wb") as file:
            file.write(envelope.original_content or envelope.content)
            file.flush()
            os.fsync(file.fileno())
        os.rename(temporary, os.path.join(self.directory, name))
        return "250 OK"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    controller = Controller(Sink(args.dir), hostname=args.host, port=args.port)
    controller.start()
    print("ready", flush=True)
    try:
        threading.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
