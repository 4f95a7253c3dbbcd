// Every YAML mistake a marketer can make is reported with file:line:column, what was expected and, where
// the intent is obvious, a suggestion; and all of them at once. Each case is a real directory under
// test/fixtures/config/broken/<case>/ so the positions below can be checked by opening the file.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { inspectConfig, loadConfig } from '../../src/config/load.js';
import { ConfigError, formatIssue } from '../../src/config/issues.js';

const BROKEN = fileURLToPath(new URL('../fixtures/config/broken/', import.meta.url));
const SEQ = 'sequences/notes.yaml';

interface Expected {
  file: string;
  line: number;
  column: number;
  code: string;
  /** A fragment the message must contain: what was wrong, what was expected, or the suggestion. */
  says: string;
}

const e = (file: string, line: number, column: number, code: string, says: string): Expected => ({ file, line, column, code, says });

const cases: Record<string, Expected[]> = {
  // YAML itself
  'yaml-bad-indent': [e(SEQ, 7, 4, 'yaml_indent', '"template:" is indented 3 spaces, but the line above is indented 4')],
  'yaml-unclosed-quote': [e(SEQ, 1, 7, 'yaml_syntax', 'unclosed quote: expected a closing "')],
  'duplicate-key': [e(SEQ, 9, 5, 'duplicate_key', 'duplicate key "kind": it is already set on line 8')],
  'yaml-missing-colon': [e(SEQ, 9, 5, 'yaml_syntax', 'expected a colon after "type": write "type: wait"')],
  // One report, not the dozen the parser makes of what follows a tab.
  'yaml-tab-indent': [e(SEQ, 6, 1, 'yaml_syntax', 'a tab used for indentation: YAML expects spaces')],
  // The shape of a file
  'unknown-key-top': [e(SEQ, 4, 1, 'unknown_key', 'unknown key "prority" at the top level (did you mean priority?)')],
  // One mistake, one report: the missing "template" is covered by the suggestion.
  'unknown-key-step': [e(SEQ, 7, 5, 'unknown_key', 'unknown key "temlate" in steps[0] (did you mean template?)')],
  'wrong-type': [e(SEQ, 4, 11, 'invalid_type', 'priority: expected a number, got "high"')],
  // Line 1 is a comment: the top-level mapping starts on line 2.
  'missing-key': [e(SEQ, 2, 1, 'missing_key', 'missing key "mode" at the top level: expected one of one_to_one, segmented')],
  'unknown-step-type': [e(SEQ, 6, 11, 'unknown_step_type', 'unknown step type "emial" (did you mean email?): expected one of email, wait, branch, goal')],
  'bad-duration': [e(SEQ, 10, 10, 'invalid_value', 'steps[1].for: expected a duration such as 30m, 12h, 3d or 2w, got "3 days" (did you mean 3d?)')],
  'wait-two-kinds': [e(SEQ, 11, 5, 'wait_ambiguous', 'exactly one of for, businessDays or until, but this one has for and businessDays')],
  'condition-misspelt': [e(SEQ, 10, 13, 'unknown_key', 'unknown condition "scor" in steps[1].when (did you mean score?)')],
  'bad-time-zone': [e('funnel.yaml', 7, 13, 'invalid_value', 'expected an IANA time zone such as Europe/Berlin, got "America/New_Yrok" (did you mean America/New_York?)')],
  // Names that must exist
  'unknown-template': [e(SEQ, 7, 15, 'unknown_template', 'template "intro-nte" not found in templates (did you mean intro-note?)')],
  'unknown-stage': [e(SEQ, 3, 8, 'unknown_stage', 'unknown stage "intrest" (did you mean interest?); stages are awareness, interest, desire')],
  'unknown-persona': [e(SEQ, 4, 22, 'unknown_persona', 'unknown persona "economic_buyr" (did you mean economic_buyer?)')],
  'unknown-sender': [e(SEQ, 4, 9, 'unknown_sender', 'unknown sender "brnad" (did you mean brand?)')],
  'advancement-unknown-stage': [e('funnel.yaml', 9, 3, 'unknown_stage', 'advancement names unknown stage "intrest" (did you mean interest?)')],
  // Steps that must fit together
  'branch-missing-step': [e(SEQ, 11, 11, 'unknown_step', 'branch then goes to unknown step "offer-cal" (did you mean offer-call?)')],
  'branch-cycle': [e(SEQ, 15, 11, 'cycle', 'branch else goes back to step "wait-for-read": steps only go forward')],
  'duplicate-step-id': [e(SEQ, 11, 9, 'duplicate_step', 'step id "intro" is already used by step 1')],
  'impossible-window': [e(SEQ, 4, 35, 'impossible_window', 'window from 18:00 to 09:00 is empty: "from" must be earlier than "to"')],
  // Schema errors and cross-field errors in one file, all reported, in the order they appear.
  'several-mistakes': [
    e('sequences/interest.yaml', 4, 8, 'unknown_stage', 'unknown stage "intrest" (did you mean interest?)'),
    e('sequences/interest.yaml', 5, 11, 'invalid_type', 'priority: expected a number, got "high"'),
    e('sequences/interest.yaml', 9, 15, 'unknown_template', 'template "followup-nte" not found in templates (did you mean followup-note?)'),
    e('sequences/interest.yaml', 12, 10, 'invalid_value', 'got "2 days" (did you mean 2d?)'),
    e('sequences/interest.yaml', 16, 11, 'unknown_step', 'unknown step "offer-cal" (did you mean offer-call?)'),
    e('sequences/interest.yaml', 21, 5, 'unknown_key', 'unknown key "gaet" in steps[3] (did you mean gate?)'),
  ],
};

function inspect(name: string) {
  const dir = join(BROKEN, name);
  return inspectConfig(dir, { templatesDir: 'templates', cwd: dir });
}

describe('reporting mistakes in the YAML configuration', () => {
  it.each(Object.entries(cases))('%s', (name, expected) => {
    const { config, issues } = inspect(name);
    expect(config).toBeNull();
    expect(issues.map(({ file, line, column, code }) => ({ file, line, column, code }))).toEqual(
      expected.map(({ file, line, column, code }) => ({ file, line, column, code })),
    );
    issues.forEach((issue, i) => {
      expect(issue.severity).toBe('error');
      expect(issue.message).toContain(expected[i]!.says);
    });
  });

  it('prints each issue as file:line:column: error: message [code]', () => {
    const { issues } = inspect('unknown-stage');
    expect(issues.map(formatIssue)).toEqual([
      'sequences/notes.yaml:3:8: error: unknown stage "intrest" (did you mean interest?); stages are awareness, interest, desire [unknown_stage]',
    ]);
  });

  it('names files relative to the working directory it is given', () => {
    const { issues } = inspectConfig(join(BROKEN, 'wrong-type'), { templatesDir: 'templates', cwd: BROKEN });
    expect(issues[0]?.file).toBe(join('wrong-type', 'sequences', 'notes.yaml'));
  });

  it('refuses to load a configuration with errors, and the error carries every issue', () => {
    let thrown: unknown;
    try {
      loadConfig(join(BROKEN, 'several-mistakes'), { templatesDir: 'templates', cwd: BROKEN });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const err = thrown as ConfigError;
    expect(err.issues).toHaveLength(6);
    expect(err.message.split('\n')[0]).toBe(
      'several-mistakes/sequences/interest.yaml:4:8: error: unknown stage "intrest" (did you mean interest?); stages are awareness, interest, desire [unknown_stage]',
    );
  });

  it('still checks sequences against the valid parts of a funnel that has errors', () => {
    // bad-time-zone's funnel is invalid, but its stages are fine: its sequence is checked against them.
    const { issues } = inspect('bad-time-zone');
    expect(issues.map((i) => i.file)).toEqual(['funnel.yaml']);
    const { issues: both } = inspectConfig(join(BROKEN, 'bad-time-zone'), { templatesDir: join(BROKEN, 'no-templates-here'), cwd: BROKEN });
    expect(both.map((i) => `${i.file}:${i.code}`)).toEqual(['bad-time-zone/funnel.yaml:invalid_value', 'bad-time-zone/sequences/notes.yaml:unknown_template']);
  });
});
