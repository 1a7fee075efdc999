// erpgate hosted sign-in page. Drives the auth service's JSON API on this
// origin: password, second factors, passkeys, magic links, SSO results and
// company selection. No dependencies, no inline code (the page's CSP
// allows only this file).
(function () {
  'use strict';

  var TOKENS_KEY = 'erpgate.tokens';
  var API = '/api/v1/auth';

  var app = document.getElementById('app');
  var $ = function (id) { return document.getElementById(id); };
  var errorBox = $('error');
  var statusBox = $('status');

  // The login in progress: the last login answer (companies, user) and
  // the current login token.
  var login = null;

  // ---- API ----------------------------------------------------------------

  function ApiError(message, code, field, status) {
    this.message = message;
    this.code = code || '';
    this.field = field || '';
    this.status = status || 0;
  }

  function call(method, path, body, bearer) {
    var headers = { 'Accept': 'application/json' };
    var init = { method: method, headers: headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (bearer) headers['Authorization'] = 'Bearer ' + bearer;
    return fetch(path, init).then(function (res) {
      return res.json().then(function (env) { return [res, env]; }, function () { return [res, null]; });
    }, function () {
      throw new ApiError('The server could not be reached. Check your connection and try again.');
    }).then(function (r) {
      var res = r[0], env = r[1];
      if (res.ok && env && env.success) return env.data;
      var e = env && env.errors && env.errors[0];
      if (e && e.message) throw new ApiError(e.message, e.code, e.field, res.status);
      throw new ApiError('Something went wrong (HTTP ' + res.status + '). Try again.', '', '', res.status);
    });
  }

  function post(path, body, bearer) { return call('POST', API + path, body, bearer); }

  // ---- messages and focus ---------------------------------------------------

  function clearMessages() {
    errorBox.textContent = '';
    statusBox.textContent = '';
    var bad = document.querySelectorAll('[aria-invalid="true"]');
    for (var i = 0; i < bad.length; i++) bad[i].removeAttribute('aria-invalid');
  }

  function say(text) { statusBox.textContent = text; }

  // showError puts an error in the live region and moves focus: to the
  // field it names when that field is on screen, else to the message.
  function showError(err, fieldIds) {
    var msg = (err && err.message) ? err.message : String(err);
    statusBox.textContent = '';
    errorBox.textContent = msg;
    var target = null;
    if (err && err.field && fieldIds && fieldIds[err.field]) target = $(fieldIds[err.field]);
    // A refused value without a field (a wrong code): back to the field
    // that holds it, the message read as its description.
    if (!target && err && err.status && err.status < 500 && fieldIds && fieldIds['']) target = $(fieldIds['']);
    if (target && visible(target)) {
      target.setAttribute('aria-invalid', 'true');
      target.setAttribute('aria-describedby', 'error');
      target.focus();
      if (typeof target.select === 'function') target.select();
    } else {
      errorBox.focus();
    }
  }

  function visible(el) {
    for (var e = el; e && e !== document.body; e = e.parentElement) {
      if (e.hidden) return false;
    }
    return true;
  }

  var steps = ['step-start', 'step-mfa', 'step-sent', 'step-company', 'step-done'];

  // showStep shows one step and focuses its first usable control.
  function showStep(id, focusId) {
    for (var i = 0; i < steps.length; i++) $(steps[i]).hidden = steps[i] !== id;
    var step = $(id);
    var el = focusId ? $(focusId) : null;
    if (!el || !visible(el)) {
      var all = step.querySelectorAll('input, button, a[href], [tabindex="-1"]');
      for (var j = 0; j < all.length; j++) {
        if (visible(all[j]) && !all[j].disabled && !(all[j].type === 'radio' && !all[j].checked)) { el = all[j]; break; }
      }
    }
    if (el) el.focus();
  }

  // busy disables a form's controls while a request runs.
  function busy(container, on) {
    var ctl = container.querySelectorAll('button, input');
    for (var i = 0; i < ctl.length; i++) ctl[i].disabled = on;
    container.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  function run(container, fn, fieldIds) {
    clearMessages();
    busy(container, true);
    return Promise.resolve().then(fn).then(function () {
      busy(container, false);
    }, function (err) {
      busy(container, false);
      showError(err, fieldIds);
    });
  }

  // ---- base64url and WebAuthn ----------------------------------------------

  function b64uToBuf(s) {
    s = String(s).replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function bufToB64u(buf) {
    if (!buf) return null;
    var bytes = new Uint8Array(buf);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function b64uToText(s) {
    return new TextDecoder().decode(new Uint8Array(b64uToBuf(s)));
  }

  // publicKeyOptions finds the options in a begin answer
  // ({session, options: {publicKey: …}}, {session, publicKey: …} or the
  // options themselves) and turns their base64url members into buffers.
  function publicKeyOptions(begin) {
    var o = begin.options || begin;
    var pk = o.publicKey || o;
    var out = {};
    for (var k in pk) if (Object.prototype.hasOwnProperty.call(pk, k)) out[k] = pk[k];
    out.challenge = b64uToBuf(pk.challenge);
    if (pk.user) {
      out.user = {};
      for (var u in pk.user) if (Object.prototype.hasOwnProperty.call(pk.user, u)) out.user[u] = pk.user[u];
      out.user.id = b64uToBuf(pk.user.id);
    }
    var lists = ['allowCredentials', 'excludeCredentials'];
    for (var i = 0; i < lists.length; i++) {
      if (!pk[lists[i]]) continue;
      out[lists[i]] = pk[lists[i]].map(function (c) {
        var d = { type: c.type, id: b64uToBuf(c.id) };
        if (c.transports) d.transports = c.transports;
        return d;
      });
    }
    return out;
  }

  function credentialJSON(cred) {
    var r = cred.response;
    var response = { clientDataJSON: bufToB64u(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = bufToB64u(r.attestationObject);
      if (typeof r.getTransports === 'function') response.transports = r.getTransports();
    } else {
      response.authenticatorData = bufToB64u(r.authenticatorData);
      response.signature = bufToB64u(r.signature);
      response.userHandle = r.userHandle ? bufToB64u(r.userHandle) : null;
    }
    var out = { id: cred.id, rawId: bufToB64u(cred.rawId), type: cred.type, response: response,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {} };
    if (cred.authenticatorAttachment) out.authenticatorAttachment = cred.authenticatorAttachment;
    return out;
  }

  function webauthnError(err) {
    if (err instanceof ApiError) return err;
    var name = err && err.name;
    if (name === 'NotAllowedError' || name === 'AbortError') {
      return new ApiError('The passkey request was cancelled or timed out. Try again.');
    }
    if (name === 'InvalidStateError') return new ApiError('This device already has a passkey for your account.');
    if (name === 'SecurityError') return new ApiError('Passkeys are not available on this address.');
    return new ApiError('The passkey did not work on this device.');
  }

  function passkeysSupported() {
    return typeof window.PublicKeyCredential === 'function' && !!navigator.credentials;
  }

  // getAssertion runs a passkey sign-in ceremony: begin (with body),
  // navigator.credentials.get, finish.
  function getAssertion(body, trustDevice) {
    return post('/webauthn/login/begin', body).then(function (begin) {
      return navigator.credentials.get({ publicKey: publicKeyOptions(begin) }).then(function (cred) {
        var finish = { session: begin.session, credential: credentialJSON(cred) };
        if (trustDevice) finish.trust_device = true;
        return post('/webauthn/login/finish', finish);
      }, function (err) { throw webauthnError(err); });
    });
  }

  // ---- the login answer ----------------------------------------------------

  // onLoginAnswer continues from any sign-in's answer: to the identity
  // provider, to a second factor, or to company selection.
  function onLoginAnswer(data) {
    if (!data || typeof data !== 'object') throw new ApiError('The sign-in answer was not understood. Try again.');
    if (data.sso_required && data.sso_url) {
      var u = new URL(data.sso_url, location.href);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new ApiError('The sign-in answer was not understood. Try again.');
      u.searchParams.set('return_to', '/login');
      say('Taking you to your organisation\'s sign-in…');
      location.assign(u.toString());
      return;
    }
    if (!data.login_token) throw new ApiError('The sign-in answer was not understood. Try again.');
    if (data.companies) {
      login = { token: data.login_token, companies: data.companies, user: data.user || null };
    } else if (login) {
      login.token = data.login_token;
    } else {
      login = { token: data.login_token, companies: [], user: null };
    }
    if (data.mfa_required) {
      showMFA(data.mfa_methods || []);
      return;
    }
    showCompanies();
  }

  // ---- step: email and password --------------------------------------------

  var startFields = { email: 'email', password: 'password' };

  $('password-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var form = ev.currentTarget;
    var email = $('email').value.trim();
    if (!email) {
      clearMessages();
      showError(new ApiError('Enter your email address.', '', 'email'), startFields);
      return;
    }
    run(form, function () {
      return post('/login', { email: email, password: $('password').value }).then(function (data) {
        $('password').value = '';
        onLoginAnswer(data);
      });
    }, startFields);
  });

  var passkeyButton = $('passkey-login');
  if (passkeyButton) {
    if (app.getAttribute('data-passkeys') === 'on' && passkeysSupported()) passkeyButton.hidden = false;
    passkeyButton.addEventListener('click', function () {
      run($('step-start'), function () {
        say('Waiting for your passkey…');
        return getAssertion({}).then(onLoginAnswer);
      });
    });
  }

  var magicButton = $('magic-link');
  if (magicButton) {
    magicButton.addEventListener('click', function () {
      var email = $('email').value.trim();
      if (!email) {
        clearMessages();
        showError(new ApiError('Enter your email address to get a link.', '', 'email'), startFields);
        return;
      }
      run($('step-start'), function () {
        return post('/magic-link', { email: email }).then(function () {
          showStep('step-sent');
          say('If an account uses that address, a sign-in link is on its way.');
        });
      }, startFields);
    });
  }

  // ---- step: second factor -------------------------------------------------

  var mfaFields = { code: 'code', method: 'method-totp' };
  var codeFields = { code: 'code', method: 'method-totp', '': 'code' };

  function chosenMethod() {
    var r = document.querySelector('input[name="method"]:checked');
    return r ? r.value : '';
  }

  function onMethodChange() {
    var m = chosenMethod();
    var isCode = m === 'totp' || m === 'email' || m === 'sms';
    $('code-field').hidden = !isCode;
    $('send-code').hidden = !(m === 'email' || m === 'sms');
    $('mfa-submit').textContent = m === 'webauthn' ? 'Use my passkey' : 'Verify';
  }

  function showMFA(methods) {
    var offered = [];
    var choices = document.querySelectorAll('#mfa-methods .choice');
    for (var i = 0; i < choices.length; i++) {
      var m = choices[i].getAttribute('data-method');
      var on = methods.indexOf(m) >= 0 && (m !== 'webauthn' || passkeysSupported());
      choices[i].hidden = !on;
      choices[i].querySelector('input').checked = false;
      if (on) offered.push(m);
    }
    if (offered.length === 0) {
      showStep('step-start');
      showError(new ApiError('This account needs a second factor this browser cannot provide. Contact your administrator.'));
      return;
    }
    // One method: no choice to make.
    $('mfa-methods').hidden = offered.length === 1;
    $('method-' + offered[0]).checked = true;
    $('code').value = '';
    $('trust-device').checked = false;
    onMethodChange();
    showStep('step-mfa', offered.length === 1 && offered[0] === 'totp' ? 'code' : null);
  }

  var radios = document.querySelectorAll('input[name="method"]');
  for (var r = 0; r < radios.length; r++) radios[r].addEventListener('change', onMethodChange);

  $('send-code').addEventListener('click', function () {
    var method = chosenMethod();
    run($('step-mfa'), function () {
      return post('/mfa/challenge', { login_token: login.token, method: method }).then(function () {
        say(method === 'sms' ? 'We sent a code by text message.' : 'We sent a code to your email address.');
        $('code').focus();
      });
    }, mfaFields);
  });

  $('mfa-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var method = chosenMethod();
    var trust = $('trust-device').checked;
    if (method === 'webauthn') {
      run($('step-mfa'), function () {
        say('Waiting for your passkey…');
        return getAssertion({ login_token: login.token }, trust).then(onLoginAnswer);
      }, mfaFields);
      return;
    }
    var code = $('code').value.replace(/\s+/g, '');
    if (!code) {
      clearMessages();
      showError(new ApiError('Enter the code.', '', 'code'), mfaFields);
      return;
    }
    run($('step-mfa'), function () {
      return post('/mfa/verify', { login_token: login.token, code: code, method: method, trust_device: trust }).then(function (data) {
        $('code').value = '';
        onLoginAnswer(data);
      });
    }, codeFields);
  });

  // ---- step: company -------------------------------------------------------

  function showCompanies() {
    var list = $('companies');
    list.textContent = '';
    var companies = (login && login.companies) || [];
    for (var i = 0; i < companies.length; i++) {
      var li = document.createElement('li');
      var b = document.createElement('button');
      b.type = 'button';
      b.className = 'company';
      b.setAttribute('data-company-id', companies[i].id);
      b.textContent = companies[i].name || companies[i].id;
      b.addEventListener('click', selectCompany.bind(null, companies[i].id));
      li.appendChild(b);
      list.appendChild(li);
    }
    $('no-companies').hidden = companies.length > 0;
    showStep('step-company');
  }

  function selectCompany(id) {
    run($('step-company'), function () {
      return post('/select-company', { login_token: login.token, company_id: id }).then(function (tokens) {
        login = null;
        sessionStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
        showDone(tokens);
      });
    });
  }

  // ---- step: signed in -----------------------------------------------------

  function storedTokens() {
    try {
      var t = JSON.parse(sessionStorage.getItem(TOKENS_KEY) || 'null');
      return t && t.access_token ? t : null;
    } catch (e) {
      return null;
    }
  }

  function showDone(tokens) {
    var name = tokens.company && (tokens.company.name || tokens.company.id);
    $('signed-in').textContent = 'Signed in to ' + (name || 'your company');
    $('add-passkey').hidden = !(app.getAttribute('data-passkeys') === 'on' && passkeysSupported());
    showStep('step-done', 'signed-in');
  }

  $('add-passkey').addEventListener('click', function () {
    var tokens = storedTokens();
    if (!tokens) { restart(); return; }
    run($('step-done'), function () {
      say('Waiting for your device to create a passkey…');
      return post('/webauthn/register/begin', {}, tokens.access_token).then(function (begin) {
        return navigator.credentials.create({ publicKey: publicKeyOptions(begin) }).then(function (cred) {
          return post('/webauthn/register/finish', { session: begin.session, credential: credentialJSON(cred) }, tokens.access_token);
        }, function (err) { throw webauthnError(err); });
      }).then(function () {
        say('Passkey added. Next time you can sign in with it.');
        $('add-passkey').hidden = true;
        $('sign-out').focus();
      });
    });
  });

  $('sign-out').addEventListener('click', function () {
    var tokens = storedTokens();
    sessionStorage.removeItem(TOKENS_KEY);
    var done = function () { restart(); say('You are signed out.'); };
    if (!tokens) { done(); return; }
    run($('step-done'), function () {
      return post('/logout', {}, tokens.access_token).then(done, done);
    });
  });

  // ---- start over ----------------------------------------------------------

  function restart() {
    login = null;
    clearMessages();
    showStep('step-start', 'email');
  }
  $('mfa-restart').addEventListener('click', restart);
  $('sent-restart').addEventListener('click', restart);
  $('company-restart').addEventListener('click', restart);

  // ---- on load: a magic link, an SSO result, or a session ------------------

  function fragment() {
    var h = location.hash.replace(/^#/, '');
    if (!h) return null;
    var out = {};
    var parts = h.split('&');
    for (var i = 0; i < parts.length; i++) {
      var kv = parts[i].split('=');
      if (kv.length >= 2) {
        try { out[decodeURIComponent(kv[0])] = decodeURIComponent(kv.slice(1).join('=')); } catch (e) { /* ignored */ }
      }
    }
    // A token in the address bar goes no further: not into history, not
    // into a bookmark, not into a screenshot.
    history.replaceState(null, '', location.pathname + location.search);
    return out;
  }

  function start() {
    var f = fragment();
    var work = null;
    if (f && f.magic) {
      say('Signing you in…');
      work = post('/magic-link/verify', { token: f.magic }).then(onLoginAnswer);
    } else if (f && f.sso_error) {
      // a refused SSO sign-in: {code, message}
      work = Promise.resolve().then(function () {
        var e;
        try { e = JSON.parse(b64uToText(f.sso_error)); } catch (x) { e = null; }
        throw new ApiError((e && e.message) || 'The sign-in with your organisation could not be completed. Try again.', e && e.code);
      });
    } else if (f && f.sso_result) {
      work = Promise.resolve().then(function () {
        var res;
        try { res = JSON.parse(b64uToText(f.sso_result)); } catch (e) {
          throw new ApiError('The answer of your organisation\'s sign-in was not understood. Try again.');
        }
        // a refusal: an envelope's errors (or one error) instead of a login answer
        var e1 = res && ((res.errors && res.errors[0]) || res.error);
        if (e1) throw new ApiError(e1.message || String(e1), e1.code);
        onLoginAnswer(res.data && res.data.login_token ? res.data : res);
      });
    } else {
      var tokens = storedTokens();
      if (tokens) {
        work = call('GET', API + '/me', undefined, tokens.access_token).then(function () {
          showDone(tokens);
        }, function () {
          sessionStorage.removeItem(TOKENS_KEY);
          showStep('step-start', 'email');
        });
      }
    }
    if (!work) {
      showStep('step-start', 'email');
      app.setAttribute('data-ready', 'true');
      return;
    }
    work.then(null, function (err) {
      showStep('step-start', 'email');
      showError(err, startFields);
    }).then(function () { app.setAttribute('data-ready', 'true'); });
  }

  start();
})();
