"""The pyro_rs extension builds, imports and reports the protocol it speaks."""

import Pyro4.constants
import pyro_rs


def test_native_module_speaks_pyro4_protocol():
    assert pyro_rs.PROTOCOL_VERSION == Pyro4.constants.PROTOCOL_VERSION == 48


def test_version_is_the_core_version():
    assert pyro_rs.__version__ == pyro_rs.core_version()
    assert pyro_rs.__version__.count(".") == 2
