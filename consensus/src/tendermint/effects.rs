//! How the engine performs Malachite's effects: the synchronous ones (sign, verify, validator
//! set, certificates) are answered here; the rest become [`Effect`]s for the driver.

use super::*;

/// Signature shares with each signer once (the first share of each).
pub(super) fn unique_shares(signatures: impl Iterator<Item = (Address, Sig)>) -> Vec<SignatureShare> {
    let mut seen = BTreeSet::new();
    signatures
        .filter(|(address, _)| seen.insert(*address))
        .map(|(address, signature)| SignatureShare {
            signer: address.0,
            signature: Signature::from_bytes(&signature.0),
        })
        .collect()
}

pub(crate) fn step_of(kind: TimeoutKind) -> u8 {
    match kind {
        TimeoutKind::Propose => 0,
        TimeoutKind::Prevote => 1,
        TimeoutKind::Precommit => 2,
        TimeoutKind::Rebroadcast => 3,
    }
}

pub(crate) fn kind_of(step: u8) -> TimeoutKind {
    match step {
        0 => TimeoutKind::Propose,
        1 => TimeoutKind::Prevote,
        2 => TimeoutKind::Precommit,
        _ => TimeoutKind::Rebroadcast,
    }
}

impl EngineIo {
    pub(super) fn chain_id(&self) -> &str {
        &self.ctx.chain_id
    }

    pub(super) fn sign_vote(&self, vote: &EngineVote) -> Sig {
        Sig::from(self.signer.sign(&vote.signed_message(self.chain_id()).signing_bytes()))
    }

    pub(super) fn verify(&self, key: &PublicKey, bytes: &[u8], signature: &Sig) -> bool {
        self.verified.signature(key, bytes, &Signature::from_bytes(&signature.0))
    }

    /// Whether `signature` by `signer` over `bytes` verifies; if not, reports `from` (who sent
    /// the `what` of height and round `at`) as misbehaving.
    pub(super) fn signed_or_blame(
        &mut self,
        from: PublicKey,
        what: &str,
        signer: &PublicKey,
        at: (u64, i64),
        bytes: &[u8],
        signature: &Sig,
    ) -> bool {
        if self.verify(signer, bytes, signature) {
            return true;
        }
        let reason = format!(
            "a {what} of {signer} at height {} round {} with a signature that does not verify",
            at.0, at.1
        );
        self.out.push(Effect::PeerMisbehaved { peer: from, reason });
        false
    }

    pub(super) fn verify_proposal(&self, proposal: &SignedMessage<Ctx, context::Proposal>) -> bool {
        let Some(validators) = &self.validators else { return false };
        // Only the round's proposer may propose (anyone else's proposals would each cost an app
        // check and memory until the height ends).
        use malachitebft_core_types::{Context as _, Validator as _};
        let expected = self.ctx.select_proposer(validators, proposal.height, proposal.round);
        if *expected.address() != proposal.proposer {
            return false;
        }
        let bytes = proposal.message.header(self.chain_id()).signing_bytes();
        self.verify(&proposal.proposer.0, &bytes, &proposal.signature)
    }

    /// The quorum certificate behind a Malachite commit or polka certificate: votes of `kind`
    /// for `value_id` at `height` and `round` are signatures over one message. One share per
    /// signer: a validator can sign the same vote twice (ed25519 signatures are not unique),
    /// Malachite keeps both, and a certificate listing a signer twice is invalid.
    fn vote_certificate(
        &self,
        kind: VoteKind,
        height: Height,
        round: Round,
        value_id: PayloadId,
        signatures: impl Iterator<Item = (Address, Sig)>,
    ) -> CommitCertificate {
        let message = Vote {
            chain_id: self.chain_id().to_owned(),
            height: height.0,
            round: round.as_u32().unwrap_or(u32::MAX),
            kind,
            block: Some(value_id.0),
        };
        CommitCertificate { message, signatures: unique_shares(signatures) }
    }

    /// Converts Malachite's commit certificate into ours.
    pub(super) fn finality_proof(&self, certificate: &MCommitCertificate<Ctx>) -> FinalityProof {
        let signatures = certificate.commit_signatures.iter().map(|s| (s.address, s.signature));
        FinalityProof::quorum(
            Engine::Tendermint,
            self.vote_certificate(
                VoteKind::Precommit,
                certificate.height,
                certificate.round,
                certificate.value_id,
                signatures,
            ),
        )
    }

    /// A round certificate mixes votes over different messages, so each signature is checked on
    /// its own; skip certificates need more than 1/3 of the power, precommit ones a quorum.
    // The error type is the one Malachite resumes with.
    #[allow(clippy::result_large_err)]
    pub(super) fn verify_round_certificate(
        &self,
        certificate: &malachitebft_core_types::RoundCertificate<Ctx>,
        validators: &EngineValidators,
    ) -> Result<(), CertificateError<Ctx>> {
        use malachitebft_core_types::{RoundCertificateType, VoteType};
        let mut seen = BTreeSet::new();
        let mut power = 0u64;
        for s in &certificate.round_signatures {
            if !seen.insert(s.address) {
                continue; // the same validator's vote signed twice counts once
            }
            let Some(weight) = validators.set().power_of(&s.address.0) else {
                return Err(CertificateError::UnknownValidator(s.address));
            };
            let kind = match s.vote_type {
                VoteType::Prevote => context::EngineVoteKind::Prevote,
                VoteType::Precommit => context::EngineVoteKind::Precommit,
            };
            if certificate.cert_type == RoundCertificateType::Precommit && s.vote_type != VoteType::Precommit
            {
                return Err(CertificateError::InvalidVoteType(s.address));
            }
            let vote = EngineVote {
                height: certificate.height,
                round: certificate.round,
                kind,
                value: s.value_id,
                voter: s.address,
            };
            let bytes = vote.signed_message(self.chain_id()).signing_bytes();
            if !self.verify(&s.address.0, &bytes, &s.signature) {
                return Err(CertificateError::InvalidRoundSignature(s.clone()));
            }
            power += weight;
        }
        let set = validators.set();
        let enough = match certificate.cert_type {
            RoundCertificateType::Skip => set.is_one_third(power),
            RoundCertificateType::Precommit => set.is_quorum(power),
        };
        if !enough {
            let total = set.total_power();
            return Err(CertificateError::NotEnoughVotingPower { signed: power, total, expected: total });
        }
        Ok(())
    }

    pub(super) fn timer(&mut self, timeout: Timeout) -> TimerId {
        TimerId {
            height: self.height,
            round: timeout.round.as_u32().unwrap_or(0),
            step: step_of(timeout.kind),
        }
    }

    pub(super) fn perform(&mut self, effect: MEffect<Ctx>) -> Result<Resume<Ctx>, String> {
        use malachitebft_core_consensus::Resumable;
        Ok(match effect {
            MEffect::ResetTimeouts(r) => r.resume_with(()),
            MEffect::CancelAllTimeouts(r) => {
                for timer in std::mem::take(&mut self.timers) {
                    self.out.push(Effect::CancelTimer(timer));
                }
                r.resume_with(())
            }
            MEffect::CancelTimeout(timeout, r) => {
                let id = self.timer(timeout);
                if self.timers.remove(&id) {
                    self.out.push(Effect::CancelTimer(id));
                }
                r.resume_with(())
            }
            MEffect::ScheduleTimeout(timeout, r) => {
                let id = self.timer(timeout);
                let t = self.timeouts;
                let base = match timeout.kind {
                    TimeoutKind::Propose => t.propose,
                    TimeoutKind::Prevote => t.prevote,
                    TimeoutKind::Precommit => t.precommit,
                    TimeoutKind::Rebroadcast => t.rebroadcast,
                };
                let after = base + t.increase * id.round;
                self.timers.insert(id);
                self.out.push(Effect::SetTimer { id, after });
                r.resume_with(())
            }
            MEffect::GetValidatorSet(_height, r) => r.resume_with(self.validators.clone()),
            MEffect::StartRound(_, _, _, _, r) => r.resume_with(()),
            MEffect::PublishConsensusMsg(message, r) => {
                self.out.push(Effect::Broadcast(wire::encode(&message)));
                r.resume_with(())
            }
            MEffect::PublishLivenessMsg(LivenessMsg::Vote(vote), r) | MEffect::RepublishVote(vote, r) => {
                self.out.push(Effect::Broadcast(wire::encode(&SignedConsensusMsg::Vote(vote))));
                r.resume_with(())
            }
            MEffect::PublishLivenessMsg(LivenessMsg::PolkaCertificate(certificate), r) => {
                self.out
                    .push(Effect::Broadcast(wire::encode_message(&wire::EngineMessage::Polka(certificate))));
                r.resume_with(())
            }
            MEffect::PublishLivenessMsg(LivenessMsg::SkipRoundCertificate(certificate), r)
            | MEffect::RepublishRoundCertificate(certificate, r) => {
                self.out
                    .push(Effect::Broadcast(wire::encode_message(&wire::EngineMessage::Round(certificate))));
                r.resume_with(())
            }
            MEffect::GetValue(height, round, _timeout, r) => {
                match self.own_proposals.get(&(height.0, round.as_u32().unwrap_or(0))) {
                    // Proposed this round before a restart: the same payload again.
                    Some(payload) => {
                        let id = PayloadId(payload.digest());
                        self.payloads.insert(id, payload.clone());
                        self.verdicts.insert(id, true);
                        let value = LocallyProposedValue::new(height, round, payload.clone());
                        self.deferred.push(MInput::Propose(value));
                    }
                    None => {
                        self.wanted_payload = Some((height.0, round));
                        let proposer = self.signer.public_key();
                        self.out.push(Effect::BuildPayload { height: height.0, proposer, on: None });
                    }
                }
                r.resume_with(())
            }
            MEffect::RestreamProposal(.., r) => r.resume_with(()),
            MEffect::SyncValue(_, r) => r.resume_with(()),
            MEffect::Decide(certificate, _extensions, r) => {
                let id = certificate.value_id;
                match self.payloads.get(&id) {
                    Some(payload) => {
                        let txs = payload.0.clone();
                        let proof = self.finality_proof(&certificate);
                        self.out.push(Effect::CommitBlock {
                            height: certificate.height.0,
                            block: id.0,
                            txs,
                            proof,
                        });
                    }
                    // Decided without the payload (never seen here): block sync fetches it, with
                    // transactions that hash to the id.
                    None => tracing::error!(
                        height = certificate.height.0,
                        "decided a payload this node never saw"
                    ),
                }
                r.resume_with(())
            }
            MEffect::SignVote(mut vote, r) => {
                let message = vote.signed_message(self.chain_id());
                let key = (message.height, message.round, message.kind);
                match self.signed.get(&key) {
                    // Signed before (a previous life): sign exactly that again.
                    Some(block) if *block != message.block => {
                        vote.value = match block {
                            None => malachitebft_core_types::NilOrVal::Nil,
                            Some(id) => malachitebft_core_types::NilOrVal::Val(PayloadId(*id)),
                        };
                    }
                    Some(_) => {}
                    None => {
                        self.signed.insert(key, message.block);
                    }
                }
                let signature = self.sign_vote(&vote);
                r.resume_with(SignedMessage::new(vote, signature))
            }
            MEffect::SignProposal(proposal, r) => {
                let key = (proposal.height.0, proposal.round.as_u32().unwrap_or(0));
                self.own_proposals.entry(key).or_insert_with(|| proposal.value.clone());
                let bytes = proposal.header(self.chain_id()).signing_bytes();
                let signature = Sig::from(self.signer.sign(&bytes));
                r.resume_with(SignedMessage::new(proposal, signature))
            }
            MEffect::VerifySignature(signed, key, r) => {
                let valid = match &signed.message {
                    ConsensusMsg::Vote(vote) => {
                        let bytes = vote.signed_message(self.chain_id()).signing_bytes();
                        self.verify(&key, &bytes, &signed.signature)
                    }
                    ConsensusMsg::Proposal(proposal) => {
                        let bytes = proposal.header(self.chain_id()).signing_bytes();
                        self.verify(&key, &bytes, &signed.signature)
                    }
                };
                r.resume_with(valid)
            }
            MEffect::VerifyCommitCertificate(certificate, validators, _, r) => {
                let proof = self.finality_proof(&certificate);
                let verdict = proof
                    .verify(
                        Engine::Tendermint,
                        self.chain_id(),
                        certificate.height.0,
                        &certificate.value_id.0,
                        validators.set(),
                    )
                    .map(|_| ())
                    .map_err(|_| CertificateError::NotEnoughVotingPower {
                        signed: 0,
                        total: validators.set().total_power(),
                        expected: validators.set().total_power(),
                    });
                r.resume_with(verdict)
            }
            MEffect::VerifyPolkaCertificate(certificate, validators, _, r) => {
                let signatures = certificate.polka_signatures.iter().map(|s| (s.address, s.signature));
                let polka = self.vote_certificate(
                    VoteKind::Prevote,
                    certificate.height,
                    certificate.round,
                    certificate.value_id,
                    signatures,
                );
                let total = validators.total_voting_power();
                let verdict =
                    polka.verify(validators.set().members(), crate::validators::QUORUM).map(|_| ()).map_err(
                        |_| CertificateError::NotEnoughVotingPower { signed: 0, total, expected: total },
                    );
                r.resume_with(verdict)
            }
            MEffect::VerifyRoundCertificate(certificate, validators, _, r) => {
                r.resume_with(self.verify_round_certificate(&certificate, &validators))
            }
            MEffect::WalAppend(entry, r) => {
                if !self.replaying {
                    let (height, entry) = wal::encode(self.height, &entry);
                    self.out.push(Effect::PersistWal { height, entry });
                }
                r.resume_with(())
            }
            MEffect::ExtendVote(.., r) => r.resume_with(None),
            MEffect::VerifyVoteExtension(.., r) => r.resume_with(Ok(())),
        })
    }
}
