"""Every stage of the campaign, one task class each. Importing this package registers them
(``campaign.tasks.STAGES``) in the order they run: the specimens' stages, learning, the comparison."""
# the order they register in:
# isort: off
from campaign.stages import specimens  # noqa: F401  (imported to register its stages, first)
from campaign.stages import lys  # noqa: F401
from campaign.stages import learning  # noqa: F401
from campaign.stages import compare  # noqa: F401
# isort: on
