"""Where the suite proves each rule of the catalog (read by `m7guard catalog proof` and
`m7guard catalog validate`; the shape, m7guard.catalog.proof.Proof, is defined there).

- The mutation battery (tests/battery/): every break a lab test runs is a fail-proof of its
  rule on a hardened lab node, and a pass-proof, since the battery breaks a rule only where
  the hardened audit passed it (tests/battery/runner.py).
- The rules no battery break covers (battery.left_out() says why): the tests below. Where a
  rule reads a Data Fabric file or tool (Data Fabric cannot be installed here), a unit test
  breaks one property of a hardened node's evidence in the shapes the vendor documents, and
  the lab's stand-in install shows the fresh node failing and the node after its role
  passing.
- The PRE-* rules judge the deployment's inventory (and its AWS account with --aws) before
  anything runs: unit tests break one input each.
"""

from __future__ import annotations

from battery import LAB_RUNS, all_breaks

from m7guard.catalog.proof import Proof

ENC = "tests/unit/checks/test_field_encryption.py::"
DF_UNIT = "tests/unit/checks/test_data_fabric_files.py::"
DFC_UNIT = "tests/unit/checks/test_data_fabric_cluster.py::"
DFC_LAB = "tests/integration/test_data_fabric.py::"
DFSSL_UNIT = "tests/unit/checks/test_data_fabric_ssl.py::"
DFNFS_UNIT = "tests/unit/checks/test_data_fabric_nfs.py::"
DFT_UNIT = "tests/unit/checks/test_data_fabric_tickets.py::"
NODE_CLAIMS = "tests/unit/checks/test_node_claims.py::"
PARTIAL = "tests/unit/checks/test_partial_evaluation.py::"
IDN_LAB = "tests/integration/test_kerberos_mfa.py::"
NET_LAB = "tests/integration/test_network_segmentation.py::"
SAFETY_LAB = "tests/integration/test_network_safety.py::"
VM1 = "tests/integration/test_vm1.py::"
KERN_CT = "tests/integration/test_kernel_tuning_containers.py::"
PRE = "tests/unit/preflight/test_preflight.py::"
BROKEN_INVENTORY = PRE + "test_a_broken_inventory_fails_naming_host_and_variable"
EXAMPLE_PASSES = PRE + "test_the_example_inventory_passes"

IDN_STAND_IN = "lab node3 (stand-in Data Fabric layout, tests/lab/files/fake_mapr.sh)"
AUD_STAND_IN = "lab vm1 (stand-in maprcli, tests/standin/maprcli.py)"
PERF_STAND_IN = "lab vm1 (stand-in Data Fabric layout with env_override.sh)"
DFC_STAND_IN = "unit (Data Fabric stand-in, tests/standin/maprcli.py)"
DFC_LAB_STAND_IN = "lab node3 (Data Fabric stand-in, tests/standin/maprcli.py)"
DFSSL_STAND_IN = "unit (Data Fabric stand-in, tests/standin/hadoop)"
DFNFS_STAND_IN = "unit (Data Fabric stand-in, tests/standin/exports)"
DFT_STAND_IN = "unit (Data Fabric stand-in, tests/standin/maprlogin.py)"

UNIT: list[Proof] = [
    # ENC-001 and ENC-002 read the KMS key (rotation, state, policy) from the controller:
    # a moto KMS server over HTTP holds good and broken keys.
    Proof("ENC-001", "fail", "automatic rotation off",
          ENC + "test_enc_001_passes_with_rotation_and_fails_without", "unit (moto KMS)"),
    Proof("ENC-001", "fail", "the key disabled", ENC + "test_enc_001_fails_for_a_disabled_key",
          "unit (moto KMS)"),
    Proof("ENC-001", "fail", "the alias names no key, or another key",
          ENC + "test_enc_001_fails_for_a_missing_key_and_a_wrong_key_id", "unit (moto KMS)"),
    Proof("ENC-001", "pass", "an enabled customer key with rotation",
          ENC + "test_enc_001_passes_with_rotation_and_fails_without", "unit (moto KMS)"),
    Proof("ENC-002", "fail", "a wildcard principal may decrypt",
          ENC + "test_enc_002_fails_on_a_wildcard_and_passes_with_a_condition", "unit (moto KMS)"),
    Proof("ENC-002", "fail", "a wildcard principal behind a condition that does not narrow it",
          ENC + "test_enc_002_a_condition_that_does_not_narrow_the_principals_is_no_exemption",
          "unit (moto KMS)"),
    Proof("ENC-002", "error", "a condition the check cannot evaluate",
          ENC + "test_enc_002_a_condition_the_check_does_not_know_is_an_error", "unit (moto KMS)"),
    Proof("ENC-002", "pass", "the default key policy",
          ENC + "test_enc_002_passes_on_the_default_policy", "unit (moto KMS)"),
    Proof("ENC-002", "pass", "conditions that narrow the principals",
          ENC + "test_enc_002_conditions_that_narrow_the_principals_exempt", "unit (moto KMS)"),
    # IDN-011: the hardened lab keeps the automation account's key-only exemption (waived by
    # the controller's waivers file), so its breaks are shown on sshd configurations and on
    # the lab node with the exemption removed.
    Proof("IDN-011", "fail", "a Match Group block exempts a group from the second factor",
          PARTIAL + "test_match_group_exemption_fails_idn_006_and_011",
          "unit (sshd -T per context)"),
    Proof("IDN-011", "fail", "a wildcard Match User block exempts matching users",
          PARTIAL + "test_wildcard_match_user_is_evaluated",
          "unit (sshd -T per context)"),
    Proof("IDN-011", "fail", "a Match LocalPort block exempts a second port",
          PARTIAL + "test_local_port_block_is_evaluated", "unit (sshd -T per context)"),
    Proof("IDN-011", "error", "a Match criterion the check cannot evaluate",
          PARTIAL + "test_a_match_criterion_the_check_cannot_evaluate_is_an_error",
          "unit (sshd -T per context)"),
    Proof("IDN-011", "fail", "the automation account logs in with its key alone (evaluated "
          "state under the waiver)", IDN_LAB + "test_hardened_node_passes_and_exemption_is_waived",
          "lab node3"),
    Proof("IDN-011", "pass", "no account exempt from the second factor",
          IDN_LAB + "test_idn_011_passes_once_no_account_is_exempt", "lab node3"),
    *(p for rule in ("IDN-012", "IDN-013", "IDN-014") for p in (
        Proof(rule, "fail", "the fresh stand-in install (files, modes, login configuration as "
              "installed)", IDN_LAB + "test_fresh_node_fails_every_idn_check", IDN_STAND_IN),
        Proof(rule, "pass", "after the identity play",
              IDN_LAB + "test_hardened_node_passes_and_exemption_is_waived", IDN_STAND_IN))),
    # the same rules on a hardened node's evidence with one property broken (unit)
    Proof("IDN-012", "fail", "one security file loosened, owned by root, or missing",
          DF_UNIT + "test_idn_012_fails_for_one_file_broken", "unit (Data Fabric evidence)"),
    Proof("IDN-012", "pass", "the hardened files", DF_UNIT +
          "test_idn_012_passes_on_the_hardened_files", "unit (Data Fabric evidence)"),
    Proof("IDN-013", "fail", "a cluster without secure=true",
          DF_UNIT + "test_idn_013_fails_when_a_cluster_is_not_secured",
          "unit (Data Fabric evidence)"),
    Proof("IDN-013", "pass", "a secured cluster",
          DF_UNIT + "test_idn_013_passes_on_a_secured_cluster", "unit (Data Fabric evidence)"),
    Proof("IDN-014", "fail", "keytab path, keytab principal, web principal or a PAM service "
          "asking for a code", DF_UNIT + "test_idn_014_fails_for_one_login_setting_broken",
          "unit (Data Fabric evidence)"),
    Proof("IDN-014", "pass", "the hardened login configuration",
          DF_UNIT + "test_idn_014_passes_on_the_hardened_login_configuration",
          "unit (Data Fabric evidence)"),
    Proof("AUD-010", "fail", "one audit setting off (feature, cluster, data, retention)",
          DF_UNIT + "test_aud_010_fails_for_one_audit_setting_off",
          "unit (Data Fabric evidence)"),
    Proof("AUD-010", "error", "maprcli cannot reach the CLDB",
          DF_UNIT + "test_aud_010_when_maprcli_fails_is_an_error", "unit (Data Fabric evidence)"),
    Proof("AUD-010", "pass", "every audit setting on",
          DF_UNIT + "test_aud_010_passes_with_every_audit_on", "unit (Data Fabric evidence)"),
    Proof("AUD-010", "fail", "Data Fabric auditing off (the fresh stand-in)",
          VM1 + "test_every_check_fails_on_a_fresh_vm[AUD-010]", AUD_STAND_IN),
    Proof("AUD-010", "pass", "after the audit_logging play",
          VM1 + "test_every_audit_check_passes_after_the_play[AUD-010]", AUD_STAND_IN),
    # The DF rules read the cluster through maprcli: the stand-in answers in the documented
    # shapes from a state a test breaks; the role's own commands repair it.
    Proof("DF-001", "fail", "the cluster not secure, or without DARE",
          DFC_UNIT + "test_one_property_broken_fails_its_rule", DFC_STAND_IN),
    Proof("DF-001", "pass", "a secure cluster with DARE (the stand-in as installed)",
          DFC_UNIT + "test_the_fresh_stand_in_fails_every_rule_but_df_001", DFC_STAND_IN),
    Proof("DF-001", "error", "an error reply of maprcli, or no usable dare",
          DFC_UNIT + "test_an_error_reply_or_an_unreadable_field_is_an_error", DFC_STAND_IN),
    Proof("DF-002", "fail", "wire security off (the fresh stand-in), or a volume without DARE",
          DFC_UNIT + "test_one_property_broken_fails_its_rule", DFC_STAND_IN),
    Proof("DF-002", "pass", "after the role's commands",
          DFC_UNIT + "test_every_rule_passes_after_the_roles_commands", DFC_STAND_IN),
    Proof("DF-002", "error", "volume list answers an error, or a volume lacks the field",
          DFC_UNIT + "test_an_error_reply_or_an_unreadable_field_is_an_error", DFC_STAND_IN),
    Proof("DF-003", "fail", "an ACE that grants everyone (p), alone or in an expression",
          DFC_UNIT + "test_one_property_broken_fails_its_rule", DFC_STAND_IN),
    Proof("DF-003", "pass", "ACEs that name p but grant only named principals",
          DFC_UNIT + "test_an_ace_that_names_p_but_grants_only_named_principals_passes",
          DFC_STAND_IN),
    Proof("DF-003", "error", "an ACE that is not a well-formed expression",
          DFC_UNIT + "test_an_error_reply_or_an_unreadable_field_is_an_error", DFC_STAND_IN),
    Proof("DF-004", "fail", "a volume not audited, or not auditing read",
          DFC_UNIT + "test_one_property_broken_fails_its_rule", DFC_STAND_IN),
    Proof("DF-004", "pass", "after the role's commands",
          DFC_UNIT + "test_every_rule_passes_after_the_roles_commands", DFC_STAND_IN),
    Proof("DF-005", "fail", "an undeclared user with fc, an undeclared group with a",
          DFC_UNIT + "test_one_property_broken_fails_its_rule", DFC_STAND_IN),
    Proof("DF-005", "pass", "after the role's acl set",
          DFC_UNIT + "test_every_rule_passes_after_the_roles_commands", DFC_STAND_IN),
    Proof("DF-005", "error", "acl show answers an error, or a principal of unknown form",
          DFC_UNIT + "test_an_error_reply_or_an_unreadable_field_is_an_error", DFC_STAND_IN),
    Proof("DF-006", "fail", "a policy disarmed, no policy, a volume permissive or DataAceOnly",
          DFC_UNIT + "test_one_property_broken_fails_its_rule", DFC_STAND_IN),
    Proof("DF-006", "pass", "after the role's commands",
          DFC_UNIT + "test_every_rule_passes_after_the_roles_commands", DFC_STAND_IN),
    Proof("DF-006", "error", "security policy list answers an error, or a field is unusable",
          DFC_UNIT + "test_an_error_reply_or_an_unreadable_field_is_an_error", DFC_STAND_IN),
    Proof("DF-006", "fail", "a declared policy that does not exist",
          DFC_UNIT + "test_security_policies_required_by_name_or_none", DFC_STAND_IN),
    Proof("DF-007", "fail", "clear-text passwords in the stand-in's ssl-server.xml",
          DFSSL_UNIT + "test_clear_text_passwords_fail_then_the_role_removes_them",
          DFSSL_STAND_IN),
    Proof("DF-007", "pass", "after the role's module removed them",
          DFSSL_UNIT + "test_clear_text_passwords_fail_then_the_role_removes_them",
          DFSSL_STAND_IN),
    Proof("DF-007", "error", "a file that is not Hadoop configuration XML, or no file",
          DFSSL_UNIT + "test_a_file_that_cannot_be_read_as_hadoop_configuration_is_an_error",
          DFSSL_STAND_IN),
    Proof("DF-008", "fail", "the exports as shipped (to every host)",
          DFNFS_UNIT + "test_the_shipped_exports_fail_and_the_role_restricts_them",
          DFNFS_STAND_IN),
    Proof("DF-008", "pass", "after the role's module restricted them",
          DFNFS_UNIT + "test_the_shipped_exports_fail_and_the_role_restricts_them",
          DFNFS_STAND_IN),
    Proof("DF-008", "fail", "an undeclared client, a client the firewall does not admit",
          DFNFS_UNIT + "test_one_export_broken_fails", DFNFS_STAND_IN),
    Proof("DF-008", "error", "an export line that cannot be read, a host name",
          DFNFS_UNIT + "test_an_unreadable_export_is_an_error_and_refused", DFNFS_STAND_IN),
    Proof("DF-008", "error", "no exports file with the gateway, no inventory",
          DFNFS_UNIT + "test_missing_evidence_is_an_error", DFNFS_STAND_IN),
    Proof("DF-009", "fail", "a 90-day ticket, one limit exceeded",
          DFT_UNIT + "test_a_long_ticket_fails_and_the_role_removes_its_file", DFT_STAND_IN),
    Proof("DF-009", "pass", "after the role's module removed the long ticket",
          DFT_UNIT + "test_a_long_ticket_fails_and_the_role_removes_its_file", DFT_STAND_IN),
    Proof("DF-009", "fail", "the lifetime or the renewal limit over the policy",
          DFT_UNIT + "test_one_limit_exceeded_fails", DFT_STAND_IN),
    Proof("DF-009", "error", "a ticket maprlogin cannot read",
          DFT_UNIT + "test_unreadable_tickets_are_an_error_and_refused", DFT_STAND_IN),
    Proof("DF-009", "error", "maprlogin output of another shape",
          DFT_UNIT + "test_output_of_another_shape_is_an_error", DFT_STAND_IN),
    # On a lab node (tests/integration/test_data_fabric.py): the fresh stand-in fails every DF
    # rule but DF-001, each passes after the data_fabric play, and fails again with one
    # property broken in the hardened stand-in.
    *(p for rule in (f"DF-{n:03d}" for n in range(1, 10)) for p in (
        *([] if rule == "DF-001" else [Proof(
            rule, "fail", "the fresh stand-in on a lab node",
            DFC_LAB + "test_the_fresh_stand_in_fails_all_but_df_001_reported_once_for_the_cluster"
            f"[{rule}]", DFC_LAB_STAND_IN)]),
        Proof(rule, "pass", "after the data_fabric play",
              DFC_LAB + f"test_every_rule_passes_after_the_role[{rule}]", DFC_LAB_STAND_IN),
        Proof(rule, "fail", "one property broken in the hardened stand-in on a lab node",
              DFC_LAB + f"test_a_hardened_stand_in_broken_for_each_rule_fails_it[{rule}]",
              DFC_LAB_STAND_IN))),
    Proof("PERF-012", "fail", "an executor, the MapR heap or the cores too large, a size unset",
          DF_UNIT + "test_perf_012_fails_for_one_size_that_does_not_fit",
          "unit (Data Fabric evidence)"),
    Proof("PERF-012", "pass", "sizes that fit the node",
          DF_UNIT + "test_perf_012_passes_when_the_sizes_fit_the_node",
          "unit (Data Fabric evidence)"),
    Proof("PERF-012", "fail", "JVM heaps not set in env_override.sh (the fresh stand-in)",
          VM1 + "test_every_check_fails_on_a_fresh_vm[PERF-012]", PERF_STAND_IN),
    Proof("PERF-012", "pass", "after the kernel_tuning play",
          VM1 + "test_every_kernel_check_passes_after_the_play_and_the_reboot[PERF-012]",
          PERF_STAND_IN),
    Proof("PERF-012", "pass", "a container node sized from IMDSv2",
          KERN_CT + "test_audit_on_containers", "lab container nodes"),
    Proof("NET-009", "fail", "mfs.conf gone, its whitelist removed, widened, or overridden",
          NODE_CLAIMS + "test_net_009_fails_for_mfs_open_beyond_the_cluster",
          "unit (node evidence)"),
    Proof("NET-009", "pass", "the cluster subnet only",
          NODE_CLAIMS + "test_net_009_passes_with_the_cluster_subnet_only",
          "unit (node evidence)"),
    Proof("NET-009", "fail", "MFS listening on every address (fresh node2 with mfs.conf)",
          NET_LAB + "test_net_checks_fail_on_fresh_nodes[NET-009]", "lab node2 (mfs.conf)"),
    Proof("NET-009", "pass", "after the zero_trust_network play",
          NET_LAB + "test_net_checks_pass_on_hardened_nodes[NET-009]", "lab node2 (mfs.conf)"),
    Proof("NET-010", "fail", "egress open (the fresh nodes, and the lab's accept policy)",
          NET_LAB + "test_net_checks_fail_on_fresh_nodes[NET-010]", "lab container nodes"),
    Proof("NET-010", "pass", "zero_trust_network_egress_policy: drop",
          SAFETY_LAB + "test_egress_drop_allows_only_the_allow_lists", "lab container node"),
    # PRE-*: the inventory and the AWS account, before anything runs
    *(p for rule, broken in (
        ("PRE-001", "a role variable of the wrong kind"),
        ("PRE-004", "controller outside the SSH allow-list"),
        ("PRE-005", "world-open CLDB port"),
        ("PRE-006", "admin without an MFA secret under the PCI profile"),
        ("PRE-007", "RC4 enctype"),
        ("PRE-008", "malformed KMS ARN"),
        ("PRE-009", "non-M7i instance type"),
        ("PRE-010", "the play reboots the host"),
    ) for p in (Proof(rule, "fail", broken, f"{BROKEN_INVENTORY}[{broken}]", "unit"),
                Proof(rule, "pass", "the example inventory", EXAMPLE_PASSES, "unit"))),
    Proof("PRE-002", "fail", "no playbook to check",
          "tests/unit/preflight/test_leniency.py::test_pre_002_with_no_playbook_fails", "unit"),
    Proof("PRE-002", "pass", "the example inventory", EXAMPLE_PASSES, "unit"),
    Proof("PRE-003", "fail", "a task that ansible-lint refuses (fqcn)",
          "tests/unit/preflight/test_lint_check.py::test_lint_result_follows_the_tree", "unit"),
    Proof("PRE-003", "pass", "a clean playbook",
          "tests/unit/preflight/test_lint_check.py::test_lint_result_follows_the_tree", "unit"),
    *(p for rule in ("PRE-011", "PRE-012", "PRE-013", "PRE-014", "PRE-015") for p in (
        Proof(rule, "fail", "a non-compliant deployment (moto EC2 and KMS)",
              PRE + "test_aws_findings_on_a_non_compliant_deployment", "unit (moto)"),
        Proof(rule, "pass", "a compliant deployment (moto EC2 and KMS)",
              PRE + "test_aws_findings_on_a_compliant_deployment", "unit (moto)"))),
]


def battery_proofs() -> list[Proof]:
    """Each break a lab run takes: a fail-proof, and a pass-proof of the hardened node."""
    out: list[Proof] = []
    for run in LAB_RUNS.values():
        taken = [brk for brk in all_breaks() if run.takes(brk)]
        out += [Proof(brk.rule, brk.expect, brk.what, run.test, run.where) for brk in taken]
        out += [Proof(rule, "pass", "the hardened node, before its breaks", run.test, run.where)
                for rule in sorted({brk.rule for brk in taken})]
    return out


def proofs() -> list[Proof]:
    return battery_proofs() + UNIT
