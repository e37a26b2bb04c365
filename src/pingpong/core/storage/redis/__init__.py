"""Redis storage: the client every topology shares (``client``), the URL
checks (``urls``, without the driver), one module per topology
(``standalone``, ``sentinel``, ``cluster``), the admin store (``admin``) and
the Lua scripts (``lua/``)."""
