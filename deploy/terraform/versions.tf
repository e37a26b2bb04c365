terraform {
  # 1.10: the S3 backend's native locking (use_lockfile in backend.hcl).
  required_version = ">= 1.10.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Remote state: S3 with native locking. The settings live outside the code
  # (backend.hcl.example); `terraform init -backend-config=backend.hcl`.
  backend "s3" {}
}

provider "aws" {
  region = local.region
  # Never the wrong account: the one deploy/environment names.
  allowed_account_ids = [local.account_id]

  default_tags {
    tags = local.tags
  }
}
