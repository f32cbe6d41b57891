"""The architecture claims (default size, the two on vectors: a few seconds): each holds, its rival architecture
is excluded by the same measurements, and the prediction off by 10 % is rejected by them too."""

import pytest

from theory.claims import architectures, registry


@pytest.mark.parametrize("name", ["lnmlp", "resmlp"])
@pytest.mark.parametrize("kernel", ["nngp", "ntk"])
def test_an_architecture_claim_holds_and_rejects_its_rival_and_a_ten_percent_error(name, kernel):
    result = registry()[f"architectures.{name}.{kernel}"].run(0, "default")
    assert result.verdict == "holds"
    assert architectures.ARCHITECTURES[name][1] in result.criterion and "excluded" in result.criterion
    assert all(row.rejected for row in result.perturb(0.1))
