// Create Job's "Additional options" for batchhub: the run's time limit. jupyter-scheduler's form
// has no time limit field and its CreateJob no free field, so the limit travels as the reserved
// tag batchhub-time-limit=<seconds> (batch_service/lab_tags.py reads it). batchhub jobs have no
// other tags, so the Tags field of the default provider is left out.
import React from 'react';
import { JobsView } from '@jupyterlab/scheduler';
import { duration, getJSON } from './api';

export const TIME_LIMIT_TAG = 'batchhub-time-limit=';
const ERROR_KEY = 'batchhub-time-limit';
const UNITS = { minutes: 60, hours: 3600 };
// A whole or decimal amount (1.5 hours); more digits are no limit anyone means.
const AMOUNT = /^\d{1,6}(\.\d{1,2})?$/;

export function timeLimitOf(tags) {
  for (const tag of tags || []) {
    if (typeof tag === 'string' && tag.startsWith(TIME_LIMIT_TAG)) {
      const seconds = parseInt(tag.slice(TIME_LIMIT_TAG.length), 10);
      return Number.isFinite(seconds) ? seconds : null;
    }
  }
  return null;
}

function initialAmount(seconds) {
  if (!seconds) {
    return ['', 'hours'];
  }
  if (seconds % 3600 === 0) {
    return [String(seconds / 3600), 'hours'];
  }
  return [String(Math.round((seconds / 60) * 100) / 100), 'minutes'];
}

// The seconds chosen (null: the profile's default) or the message for what is wrong.
export function checkTimeLimit(amount, unit, profile) {
  const text = amount.trim();
  if (text === '') {
    return { seconds: null, error: '' };
  }
  if (!AMOUNT.test(text)) {
    return { seconds: null, error: `Enter a number of ${unit}, such as 2 or 1.5.` };
  }
  const seconds = Math.round(parseFloat(text) * UNITS[unit]);
  if (seconds < 60) {
    return { seconds: null, error: 'The time limit must be at least one minute.' };
  }
  if (profile && profile.max_time_limit && seconds > profile.max_time_limit) {
    return {
      seconds: null,
      error: `At most ${duration(profile.max_time_limit)} on ${profile.display_name || profile.name}.`
    };
  }
  return { seconds, error: '' };
}

let profilesRequest = null;
function useProfiles() {
  const [profiles, setProfiles] = React.useState(null);
  React.useEffect(() => {
    profilesRequest = profilesRequest || getJSON('profiles');
    let live = true;
    profilesRequest
      .then(body => live && setProfiles(body.profiles))
      .catch(() => {
        // The service's own check still applies on Create; try again next time.
        profilesRequest = null;
        if (live) {
          setProfiles([]);
        }
      });
    return () => {
      live = false;
    };
  }, []);
  return profiles;
}

const h = React.createElement;

export function AdvancedOptions(props) {
  const editable =
    props.jobsView === JobsView.CreateForm ||
    props.jobsView === JobsView.CreateFromJobDescriptionForm;
  const chosen = timeLimitOf(props.model.tags);
  const [first, firstUnit] = initialAmount(chosen);
  const [amount, setAmount] = React.useState(first);
  const [unit, setUnit] = React.useState(firstUnit);
  const profiles = useProfiles();
  const profile = (profiles || []).find(p => p.name === props.model.computeType);
  const check = checkTimeLimit(amount, unit, profile);

  React.useEffect(() => {
    if (!editable) {
      return;
    }
    const tags = check.seconds === null ? [] : [TIME_LIMIT_TAG + check.seconds];
    if (JSON.stringify(tags) !== JSON.stringify(props.model.tags || [])) {
      props.handleModelChange({ ...props.model, tags });
    }
    if ((props.errors[ERROR_KEY] || '') !== check.error) {
      props.handleErrorsChange({ ...props.errors, [ERROR_KEY]: check.error });
    }
  }, [editable, check.seconds, check.error]);

  if (!editable) {
    return h(
      'div',
      { className: 'bh-TimeLimit' },
      h('span', { className: 'bh-TimeLimit-label' }, 'Time limit'),
      h('span', null, chosen ? duration(chosen) : "the profile's default")
    );
  }
  let hint = "Leave empty for the profile's default.";
  if (profile && profile.max_time_limit) {
    hint =
      `Empty: ${duration(profile.default_time_limit)} (the default of ` +
      `${profile.display_name || profile.name}); at most ${duration(profile.max_time_limit)}.`;
  }
  const id = 'bh-time-limit';
  return h(
    'div',
    { className: 'bh-TimeLimit' },
    h('label', { className: 'bh-TimeLimit-label', htmlFor: id }, 'Time limit'),
    h(
      'div',
      { className: 'bh-TimeLimit-row' },
      h('input', {
        id,
        name: 'batchhub-time-limit',
        className: 'jp-mod-styled bh-TimeLimit-amount',
        inputMode: 'decimal',
        placeholder: 'default',
        value: amount,
        'aria-invalid': check.error ? 'true' : 'false',
        'aria-describedby': `${id}-hint`,
        onChange: e => setAmount(e.target.value)
      }),
      h(
        'select',
        {
          className: 'jp-mod-styled bh-TimeLimit-unit',
          'aria-label': 'Time limit unit',
          value: unit,
          onChange: e => setUnit(e.target.value)
        },
        h('option', { value: 'minutes' }, 'minutes'),
        h('option', { value: 'hours' }, 'hours')
      )
    ),
    h(
      'div',
      {
        id: `${id}-hint`,
        className: check.error ? 'bh-TimeLimit-error' : 'bh-TimeLimit-hint',
        role: check.error ? 'alert' : undefined
      },
      check.error || hint
    ),
    h(
      'div',
      { className: 'bh-TimeLimit-hint' },
      'A run still going when its time limit is reached is stopped (timed out).'
    )
  );
}
