"""Futures (``Pyro4.futures``): asynchronous call results and the batch exception wrapper."""

import functools
import threading
import time

__all__ = ["Future", "FutureResult", "_ExceptionWrapper"]


class Future:
    """A callable evaluated in a background thread; calling it returns a FutureResult."""

    def __init__(self, somecallable):
        self.callable = somecallable
        self.chain = []
        self.exceptionhandler = None
        self.call_delay = 0
        self.cancelled = False
        self.completed = False

    def __call__(self, *args, **kwargs):
        if self.completed or not hasattr(self, "chain"):
            raise RuntimeError("the future has already been evaluated")
        if self.cancelled:
            raise RuntimeError("the future has been cancelled")
        chain = self.chain
        del self.chain
        result = FutureResult()
        thread = threading.Thread(target=self.__asynccall, args=(result, chain, args, kwargs))
        thread.daemon = True
        thread.start()
        return result

    def __asynccall(self, asyncresult, chain, args, kwargs):
        while self.call_delay > 0 and not self.cancelled:
            delay = min(self.call_delay, 2)
            time.sleep(delay)
            self.call_delay -= delay
        if self.cancelled:
            self.completed = True
            asyncresult.set_cancelled()
            return
        try:
            self.completed = True
            self.cancelled = False
            value = self.callable(*args, **kwargs)
            for call, cargs, ckwargs in chain:
                value = functools.partial(call, value)(*cargs, **ckwargs)
            asyncresult.value = value
        except Exception as x:  # noqa: BLE001
            if self.exceptionhandler:
                self.exceptionhandler(x)
            asyncresult.value = _ExceptionWrapper(x)

    def delay(self, seconds):
        """Delay the evaluation; False if it already started."""
        if self.completed:
            raise RuntimeError("cannot delay, the future has already been evaluated")
        if self.cancelled:
            raise RuntimeError("the future has been cancelled")
        self.call_delay = seconds
        return True

    def cancel(self):
        """Cancel the evaluation if it did not start yet."""
        if self.completed:
            return False
        self.cancelled = True
        return True

    def then(self, call, *args, **kwargs):
        """Chain a call that gets the previous value as its first argument."""
        if not hasattr(self, "chain"):
            raise RuntimeError("the future has already been evaluated")
        self.chain.append((call, args, kwargs))
        return self

    def iferror(self, exceptionhandler):
        """Handler called with the exception if the evaluation fails."""
        self.exceptionhandler = exceptionhandler
        return self


class FutureResult:
    """The result of an asynchronous call, available later through ``value``."""

    def __init__(self):
        self.__ready = threading.Event()
        self.callchain = []
        self.valueLock = threading.Lock()
        self.exceptionhandler = None

    def wait(self, timeout=None):
        """Wait for the result; True when it is there."""
        return self.__ready.wait(timeout)

    @property
    def ready(self):
        """True when the result is available."""
        return self.__ready.is_set()

    def get_value(self):
        self.__ready.wait()
        if isinstance(self.__value, _ExceptionWrapper):
            self.__value.raiseIt()
        return self.__value

    def set_value(self, value):
        with self.valueLock:
            self.__value = value
            if isinstance(value, _ExceptionWrapper):
                if self.exceptionhandler:
                    self.exceptionhandler(value.exception)
            else:
                for call, args, kwargs in self.callchain:
                    self.__value = functools.partial(call, self.__value)(*args, **kwargs)
                    if isinstance(self.__value, _ExceptionWrapper):
                        break
            self.callchain = []
            self.__ready.set()

    value = property(get_value, set_value, None, "The result; reading it blocks until it is there.")

    def set_cancelled(self):
        self.set_value(_ExceptionWrapper(RuntimeError("future has been cancelled")))

    def then(self, call, *args, **kwargs):
        """Chain a call on the result."""
        with self.valueLock:
            if self.__ready.is_set():
                self.__value = functools.partial(call, self.__value)(*args, **kwargs)
            else:
                self.callchain.append((call, args, kwargs))
            return self

    def iferror(self, exceptionhandler):
        """Handler called with the exception if the call failed."""
        self.exceptionhandler = exceptionhandler
        return self


class _ExceptionWrapper:
    """A remote exception inside a batch result (re-raised where it appears)."""

    def __init__(self, exception):
        self.exception = exception

    def raiseIt(self):
        raise self.exception

    def __serialized_dict__(self):
        from pyro_rs.util import SerializerBase
        return {
            "__class__": "Pyro4.futures._ExceptionWrapper",
            "exception": SerializerBase.class_to_dict(self.exception),
        }
