"""The policy pack: `pulumi preview --policy-pack policy` (see glance_rules.py for the rules).

The engine runs this directory as a program; the rules import the project's own modules.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policy.glance_rules import POLICIES

PolicyPack(name="glance-pulumi", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
