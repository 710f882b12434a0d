"""What a benchmark figure names its machine by."""

from jaxfp.eval.bench import cpu_identity, machine_info

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
model name\t: Intel Xeon
flags\t\t: fpu avx2
"""


def test_cpu_identity_reads_the_first_processor():
    assert cpu_identity(ZEN4) == {
        "cpu": "AMD EPYC",
        "cpu_vendor": "AuthenticAMD",
        "cpu_family": 25,
        "cpu_model": 17,
        "cpu_vector": "avx512f",
    }


def test_cpu_identity_without_the_fields():
    assert cpu_identity("processor : 0\nflags : fpu avx2\n") == {
        "cpu": None,
        "cpu_vendor": None,
        "cpu_family": None,
        "cpu_model": None,
        "cpu_vector": "avx2",
    }


def test_machine_info_names_backend_and_devices():
    info = machine_info()
    assert info["backend"] == "cpu" and info["cores"] >= 1 and info["devices"]
    assert isinstance(info["cpu"], str)
