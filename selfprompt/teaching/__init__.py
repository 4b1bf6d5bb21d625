"""What a class needs around the method: the notebooks' helpers (``notebook``), the
interactive explorer (``explorer``, ``widget_snapshot``), exercises from solutions
(``exercises``), the machine check before class (``classroom``), the HTML book
(``book``) and the offline bundle (``bundle``, standard library only until it installs)."""
