import threading

from workbench.core.cancel import is_cancelled


def test_each_kind_of_cancel_token():
    event = threading.Event()
    assert not is_cancelled(None)
    assert not is_cancelled(event)
    event.set()
    assert is_cancelled(event)
    flag = {"stop": False}
    assert not is_cancelled(lambda: flag["stop"])
    flag["stop"] = True
    assert is_cancelled(lambda: flag["stop"])
