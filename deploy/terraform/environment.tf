# The environment's values come from deploy/environment/environment.env, the
# one file that also feeds kustomize, the Kyverno policy, the Helm commands and
# both pipelines: account, region, stack name, GitHub repository. Lines are
# KEY=VALUE; comments and blank lines are skipped.
locals {
  environment = {
    for line in split("\n", file("${path.module}/../environment/environment.env")) :
    trimspace(split("=", line)[0]) => trimspace(join("=", slice(split("=", line), 1, length(split("=", line)))))
    if length(regexall("^[A-Z][A-Z0-9_]*=", line)) > 0
  }

  account_id  = local.environment["AWS_ACCOUNT_ID"]
  region      = local.environment["AWS_REGION"]
  name        = local.environment["STACK_NAME"]
  github_repo = "${local.environment["GITHUB_ORG"]}/${local.environment["GITHUB_REPO"]}"
}

# A stack name the resources accept: the cluster, repository, Redis group
# and role names are built from it.
check "stack_name" {
  assert {
    condition     = can(regex("^[a-z][a-z0-9-]{2,27}$", local.name))
    error_message = "STACK_NAME (deploy/environment/environment.env) must be 3-28 lower-case letters, digits or dashes, starting with a letter."
  }
}
