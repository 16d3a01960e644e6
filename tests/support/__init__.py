"""What tests, benches and load tests share: processes on 127.0.0.1 (:mod:`.services`), the
local stack (:mod:`.stack`) and documents made in code (:mod:`.documents`).

Imported as ``tests.support`` with the repository root on the path: pytest puts it there
(``tests`` is a package), and benches and load tests run as modules from the root
(``python -m bench.soak``, ``python -m loadtests.run``). :mod:`.documents` needs only Pillow
and the standard library, so the load generator's image carries it beside ``loadtests/``.
"""
