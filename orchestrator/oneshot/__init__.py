"""Gradient-based one-shot activation search (DARTS, DrNAS, GDAS with the GRAFS fixes), run as
one child: a supernet whose activation cell mixes every op, then discretised (docs/oneshot.md)."""
