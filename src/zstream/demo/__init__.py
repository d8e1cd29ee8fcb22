"""The ``zstream demo`` command's system on one machine: simulated stream, embedded broker, live view, report."""
